import MesosCodec
import NIOCore
import XCTest

final class RecordIOTests: XCTestCase {
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

    func testManyRecordsInOneRead() throws {
        XCTAssertEqual(try decodeAll([stream]), ["hello", "", "{\"a\":\"b c\"}", "xyz"])
    }

    func testByteAtATime() throws {
        XCTAssertEqual(try decodeAll(stream.map { [$0] }), ["hello", "", "{\"a\":\"b c\"}", "xyz"])
    }

    func testEverySplitPoint() throws {
        for split in 0...stream.count {
            let records = try decodeAll([Array(stream[..<split]), Array(stream[split...])])
            XCTAssertEqual(records, ["hello", "", "{\"a\":\"b c\"}", "xyz"], "split at \(split)")
        }
    }

    func testEncodeRoundTrip() throws {
        var buffer = RecordIO.encode(Array("payload".utf8))
        XCTAssertEqual(String(buffer: buffer), "7\npayload")
        var decoder = RecordIODecoder()
        XCTAssertEqual(try decoder.decode(buffer: &buffer).map { String(buffer: $0) }, "payload")
    }

    func testOversizeIsRefusedBeforeTheBodyArrives() {
        XCTAssertThrowsError(try decodeAll([Array("2000\n".utf8)], maximum: 1024)) { error in
            XCTAssertTrue((error as? CodecError)?.isRecordTooLarge == true, "\(error)")
        }
    }

    func testHugeLengthDoesNotAllocate() {
        XCTAssertThrowsError(try decodeAll([Array("18446744073709551615\n".utf8)])) { error in
            XCTAssertTrue((error as? CodecError)?.isRecordTooLarge == true, "\(error)")
        }
        XCTAssertThrowsError(try decodeAll([Array("99999999999999999999\n".utf8)])) { error in
            XCTAssertTrue((error as? CodecError)?.isMalformedRecordLength == true, "\(error)")
        }
    }

    func testMalformedLengths() {
        for bad in ["-5\nhello", "5 \nhello", "\nhello", "0x5\nhello", "5\r\nhello", "abc\n", "+5\nhello"] {
            XCTAssertThrowsError(try decodeAll([Array(bad.utf8)]), bad) { error in
                XCTAssertTrue((error as? CodecError)?.isMalformedRecordLength == true, "\(bad): \(error)")
            }
        }
    }

    func testLengthWithoutNewlineFailsOnceTooLong() {
        XCTAssertThrowsError(try decodeAll([Array(String(repeating: "1", count: 21).utf8)])) { error in
            XCTAssertTrue((error as? CodecError)?.isMalformedRecordLength == true, "\(error)")
        }
    }

    func testTruncatedRecord() {
        XCTAssertThrowsError(try decodeAll([Array("10\nshort".utf8)])) { error in
            XCTAssertTrue((error as? CodecError)?.isTruncatedRecord == true, "\(error)")
            XCTAssertTrue("\(error)".contains("expected 10 bytes, got 5"), "\(error)")
        }
        XCTAssertThrowsError(try decodeAll([Array("5\nhello12".utf8)])) { error in
            XCTAssertTrue((error as? CodecError)?.isTruncatedRecord == true, "\(error)")
        }
    }

    func testCleanEndOfStream() throws {
        XCTAssertEqual(try decodeAll([Array("5\nhello".utf8)]), ["hello"])
        XCTAssertEqual(try decodeAll([]), [])
    }

    func testRandomGarbageNeverCrashes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2000 {
            let length = Int.random(in: 0..<64, using: &generator)
            let bytes = (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            // Either records or a CodecError; never a crash or a hang.
            do {
                _ = try decodeAll([bytes])
            } catch {
                XCTAssertTrue(error is CodecError, "\(error)")
            }
        }
    }
}
