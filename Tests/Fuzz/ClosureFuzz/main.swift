import FuzzDriver
import SwiftProtobuf
import WorkerProtocol
import WorkerWire

/// `TaskInfo.data` of a closure task and framework MESSAGEs carrying mini-task batches, in either
/// encoding: a closure/batch or a WorkerProtocolError, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClosure(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let closure = try? Sparkmesos_Worker_V1_Closure(taskData: bytes) {
        precondition(!closure.function.isEmpty, "a closure without a function was accepted")
    }
    if let (batch, encoding) = try? MiniTask.parseBatch(bytes) {
        let results = batch.map { MiniTaskResult(id: $0.id, state: "FINISHED", data: $0.payload) }
        let payload = MiniTaskResult.payload(results, encoding)
        // The protobuf form round-trips through the generated code.
        if encoding == .protobuf {
            let decoded = try? Sparkmesos_Worker_V1_MiniTaskResults(serializedBytes: payload)
            precondition(decoded?.results.map(\.id) == batch.map(\.id), "results did not decode as encoded")
        }
    }
    // The hand-written protobuf decoder and the generated one agree on every batch both accept.
    if let ours = try? MiniTask.decodeBatch(bytes[...]),
        let generated = try? Sparkmesos_Worker_V1_MiniTaskBatch(serializedBytes: bytes)
    {
        let theirs = generated.tasks.map {
            MiniTask(id: $0.id, function: $0.function, payload: [UInt8]($0.payload), environment: $0.environment)
        }
        precondition(ours == theirs, "the two protobuf decoders disagree")
    }
    return 0
}

runFuzzer(fuzzClosure)
