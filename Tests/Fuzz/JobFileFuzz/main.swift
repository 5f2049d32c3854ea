import FuzzDriver
import HarnessJobs

/// Harness job files, JSON or YAML (the first byte chooses): a Job or a JobFileError naming the
/// key, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJobFile(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    guard let first = bytes.first else { return 0 }
    let text = String(decoding: bytes.dropFirst(), as: UTF8.self)
    let file = first % 2 == 0 ? "job.json" : "job.yaml"
    _ = try? JobParser.parse(text, file: file, baseDirectory: "/nonexistent")
    return 0
}

runFuzzer(fuzzJobFile)
