import FuzzDriver
import WorkerProtocol

/// `TaskInfo.data` of a closure task and framework MESSAGEs carrying mini-task batches, in either
/// encoding: a closure/batch or a WorkerProtocolError, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClosure(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let closure = try? Sparkmesos_Worker_V1_Closure(taskData: bytes) {
        precondition(!closure.function.isEmpty, "a closure without a function was accepted")
    }
    if let (batch, encoding) = try? Sparkmesos_Worker_V1_MiniTaskBatch.parse(bytes) {
        var results = Sparkmesos_Worker_V1_MiniTaskResults()
        results.results = batch.tasks.map { task in
            var result = Sparkmesos_Worker_V1_MiniTaskResult()
            result.id = task.id
            result.data = task.payload
            return result
        }
        _ = results.payload(encoding)
    }
    return 0
}

runFuzzer(fuzzClosure)
