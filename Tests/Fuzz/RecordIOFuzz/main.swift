import FuzzDriver
import MesosCodec
import NIOCore

/// RecordIO framing of the agent's event stream: any bytes, cut at any read boundaries (the first
/// byte chooses the chunk size), give records or a CodecError, never a crash; records decoded
/// whole and in chunks are the same.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzRecordIO(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let first = bytes.first else { return 0 }
    let input = bytes.dropFirst()
    let whole = records(input, chunk: input.count + 1)
    let chunked = records(input, chunk: Int(first % 17) + 1)
    precondition(whole == chunked, "chunking changed the records")
    for record in whole.records {
        var framed = RecordIO.encode(record)
        var decoder = RecordIODecoder(maximumRecordSize: 1 << 16)
        let again = try? decoder.decode(buffer: &framed)
        precondition(again.map { Array($0.readableBytesView) } == record, "a record did not survive a round trip")
    }
    return 0
}

struct Decoded: Equatable {
    var records: [[UInt8]] = []
    var failed = false
}

func records(_ input: ArraySlice<UInt8>, chunk: Int) -> Decoded {
    var decoder = RecordIODecoder(maximumRecordSize: 1 << 16)
    var buffer = ByteBuffer()
    var result = Decoded()
    var rest = input[...]
    while !rest.isEmpty {
        buffer.writeBytes(rest.prefix(chunk))
        rest = rest.dropFirst(chunk)
        do {
            while let record = try decoder.decode(buffer: &buffer) {
                result.records.append(Array(record.readableBytesView))
            }
        } catch {
            result.failed = true
            return result
        }
    }
    do {
        while let record = try decoder.decodeLast(buffer: &buffer, seenEOF: true) {
            result.records.append(Array(record.readableBytesView))
        }
    } catch {
        result.failed = true
    }
    return result
}

runFuzzer(fuzzRecordIO)
