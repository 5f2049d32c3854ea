import FuzzDriver
import MesosCodec

/// Mesos durations from the environment (`5secs`, `0.5secs`, `15mins`): a Duration or nil, never a
/// crash; a parsed duration formats to text that parses back to it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDuration(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let duration = MesosDuration.parse(text) else { return 0 }
    let formatted = MesosDuration.format(duration)
    precondition(MesosDuration.parse(formatted) != nil, "'\(text)' formats to '\(formatted)', which does not parse")
    return 0
}

runFuzzer(fuzzDuration)
