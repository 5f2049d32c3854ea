import MesosCodec
import NIOCore
import Testing

struct RecordIOTests {
    private func decodeAll(_ chunks: [[UInt8]], maximum: Int = 1024) throws -> [String] {
        var decoder = RecordIODecoder(maximumRecordSize: maximum)
        var buffer = ByteBuffer()
        var records: [String] = []
        for chunk in chunks {
            buffer.writeBytes(chunk)
            while let record = try decoder.decode(buffer: &buffer) { records.append(String(buffer: record)) }
        }
        while let record = try decoder.decodeLast(buffer: &buffer, seenEOF: true) {
            records.append(String(buffer: record))
        }
        return records
    }

    private let stream = Array("5\nhello0\n11\n{\"a\":\"b c\"}3\nxyz".utf8)

    @Test func manyRecordsInOneRead() throws {
        #expect(try decodeAll([stream]) == ["hello", "", "{\"a\":\"b c\"}", "xyz"])
    }

    @Test func byteAtATime() throws {
        #expect(try decodeAll(stream.map { [$0] }) == ["hello", "", "{\"a\":\"b c\"}", "xyz"])
    }

    @Test func everySplitPoint() throws {
        for split in 0...stream.count {
            let records = try decodeAll([Array(stream[..<split]), Array(stream[split...])])
            #expect(records == ["hello", "", "{\"a\":\"b c\"}", "xyz"], "split at \(split)")
        }
    }

    @Test func encodeRoundTrip() throws {
        var buffer = RecordIO.encode(Array("payload".utf8))
        #expect(String(buffer: buffer) == "7\npayload")
        var decoder = RecordIODecoder()
        #expect(try decoder.decode(buffer: &buffer).map { String(buffer: $0) } == "payload")
    }

    @Test func oversizeIsRefusedBeforeTheBodyArrives() {
        if let error = #expect(
            throws: (any Error).self, performing: { try decodeAll([Array("2000\n".utf8)], maximum: 1024) })
        {
            #expect((error as? CodecError)?.isRecordTooLarge == true, "\(error)")
        }
    }

    @Test func hugeLengthDoesNotAllocate() {
        if let error = #expect(
            throws: (any Error).self, performing: { try decodeAll([Array("18446744073709551615\n".utf8)]) })
        {
            #expect((error as? CodecError)?.isRecordTooLarge == true, "\(error)")
        }
        if let error = #expect(
            throws: (any Error).self, performing: { try decodeAll([Array("99999999999999999999\n".utf8)]) })
        {
            #expect((error as? CodecError)?.isMalformedRecordLength == true, "\(error)")
        }
    }

    @Test func malformedLengths() {
        for bad in ["-5\nhello", "5 \nhello", "\nhello", "0x5\nhello", "5\r\nhello", "abc\n", "+5\nhello"] {
            if let error = #expect(throws: (any Error).self, "\(bad)", performing: { try decodeAll([Array(bad.utf8)]) })
            {
                #expect((error as? CodecError)?.isMalformedRecordLength == true, "\(bad): \(error)")
            }
        }
    }

    @Test func lengthWithoutNewlineFailsOnceTooLong() {
        if let error = #expect(
            throws: (any Error).self, performing: { try decodeAll([Array(String(repeating: "1", count: 21).utf8)]) })
        {
            #expect((error as? CodecError)?.isMalformedRecordLength == true, "\(error)")
        }
    }

    @Test func truncatedRecord() {
        if let error = #expect(throws: (any Error).self, performing: { try decodeAll([Array("10\nshort".utf8)]) }) {
            #expect((error as? CodecError)?.isTruncatedRecord == true, "\(error)")
            #expect("\(error)".contains("expected 10 bytes, got 5"), "\(error)")
        }
        if let error = #expect(throws: (any Error).self, performing: { try decodeAll([Array("5\nhello12".utf8)]) }) {
            #expect((error as? CodecError)?.isTruncatedRecord == true, "\(error)")
        }
    }

    @Test func cleanEndOfStream() throws {
        #expect(try decodeAll([Array("5\nhello".utf8)]) == ["hello"])
        #expect(try decodeAll([]) == [])
    }

    @Test func randomGarbageNeverCrashes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<64, using: &generator)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Either records or a CodecError; never a crash or a hang.
            do {
                _ = try decodeAll([bytes])
            } catch {
                #expect(error is CodecError, "\(error)")
            }
        }
    }
}
