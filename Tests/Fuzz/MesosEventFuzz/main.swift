import FuzzDriver
import MesosCodec
import MesosProto

/// Events in both encodings, as the executor reads them off the SUBSCRIBE stream (the Mesos JSON
/// normalizer included): a message or a CodecError, never a crash. A decoded event encodes again.
/// The same bytes as the JSON an agent gives its command executor (`--task_command`,
/// `--task_environment`), which the executor reads when it stands in for it.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMesosEvent(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = UnsafeBufferPointer(start: data, count: size)
    for encoding in WireEncoding.allCases {
        guard let event = try? encoding.decode(Mesos_V1_Executor_Event.self, from: bytes) else { continue }
        _ = try? encoding.encode(event)
    }
    if let call = try? WireEncoding.json.decode(Mesos_V1_Executor_Call.self, from: bytes) {
        _ = try? MesosJSON.encode(call)
    }
    if let command = try? MesosJSON.decode(Mesos_V1_CommandInfo.self, from: bytes) {
        _ = try? MesosJSON.encode(command)
    }
    if let environment = try? MesosJSON.decode(Mesos_V1_Environment.self, from: bytes) {
        _ = try? MesosJSON.encode(environment)
    }
    return 0
}

runFuzzer(fuzzMesosEvent)
