import FuzzDriver
import WorkerWire

/// What a worker writes on fd 4 (and the executor on fd 3), cut at any read boundaries (the first
/// byte chooses the chunk size): frames and the messages inside them give messages or a WireError,
/// never a crash; a decoded message encodes to something that decodes to the same message.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzWorkerWire(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    var decoder = FrameDecoder(maximumFrameSize: 1 << 16)
    guard let first = bytes.first else { return 0 }
    let chunk = Int(first % 13) + 1
    var rest = bytes.dropFirst()
    loop: while !rest.isEmpty {
        decoder.feed(rest.prefix(chunk))
        rest = rest.dropFirst(chunk)
        while true {
            let frame: ArraySlice<UInt8>?
            do { frame = try decoder.next() } catch { break loop }
            guard let frame else { break }
            check(frame)
        }
    }
    check(bytes.dropFirst())
    return 0
}

func check(_ payload: ArraySlice<UInt8>) {
    if let message = try? FromWorker(decoding: payload) {
        let again = try? FromWorker(decoding: message.encoded()[...])
        precondition(again == message, "FromWorker did not survive a round trip: \(message)")
    }
    if let message = try? ToWorker(decoding: payload) {
        let again = try? ToWorker(decoding: message.encoded()[...])
        precondition(again == message, "ToWorker did not survive a round trip: \(message)")
    }
}

runFuzzer(fuzzWorkerWire)
