import FuzzDriver
import SwiftProtobuf
import WorkerProtocol
import WorkerWire

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// `TaskInfo.data` of a closure task and framework MESSAGEs carrying mini-task batches, in either
/// encoding: a closure/batch or a WorkerProtocolError, never a crash.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzClosure(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    if let closure = try? Sparkmesos_Worker_V1_Closure(taskData: bytes) {
        precondition(!closure.function.isEmpty, "a closure without a function was accepted")
    }
    // The plain JSON reader accepts only closures the generated code reads the same way.
    if let ours = MiniTask.decodePlainJSONClosure(bytes) {
        let generated = try? Sparkmesos_Worker_V1_Closure(jsonUTF8Bytes: bytes, options: strictJSON)
        let theirs = generated.map {
            MiniTask(id: "", function: $0.function, payload: [UInt8]($0.payload), environment: $0.environment)
        }
        precondition(
            ours == theirs || escapesAPairAbovePlane1(bytes),
            "the plain JSON reader accepted a closure the generated code reads otherwise")
    }
    if let (batch, encoding) = try? MiniTaskBatch.parse(bytes) {
        let results = batch.tasks.map {
            MiniTaskResult(
                id: $0.id, state: "FINISHED", data: $0.payload, error: $0.function,
                dataFile: $0.environment.keys.sorted().joined())
        }
        let payload = MiniTaskResult.payload(results, encoding)
        // Both forms are what the generated code writes, byte for byte.
        var generated = Sparkmesos_Worker_V1_MiniTaskResults()
        generated.results = results.map {
            var result = Sparkmesos_Worker_V1_MiniTaskResult()
            (result.id, result.state, result.error, result.dataFile) = ($0.id, $0.state, $0.error, $0.dataFile)
            result.data = Data($0.data)
            return result
        }
        let expected: [UInt8]? =
            switch encoding {
            case .protobuf: try? generated.serializedBytes()
            case .json: try? generated.jsonUTF8Bytes(options: resultsJSONOptions)
            }
        precondition(payload == expected, "results were not encoded as the generated code encodes them")
    }
    // The plain JSON reader accepts only batches the generated code reads the same way.
    if let ours = MiniTask.decodePlainJSONBatch(bytes) {
        let generated = try? Sparkmesos_Worker_V1_MiniTaskBatch(jsonUTF8Bytes: bytes, options: strictJSON)
        let theirs = generated?.tasks.map {
            MiniTask(id: $0.id, function: $0.function, payload: [UInt8]($0.payload), environment: $0.environment)
        }
        precondition(
            ours == theirs || escapesAPairAbovePlane1(bytes),
            "the plain JSON reader accepted what the generated code reads otherwise")
    }
    // The hand-written protobuf decoder and the generated one agree on every batch both accept.
    if let ours = try? MiniTaskBatch.decode(bytes[...]),
        let generated = try? Sparkmesos_Worker_V1_MiniTaskBatch(serializedBytes: bytes)
    {
        let tasks = generated.tasks.map {
            MiniTask(id: $0.id, function: $0.function, payload: [UInt8]($0.payload), environment: $0.environment)
        }
        precondition(
            ours == MiniTaskBatch(tasks: tasks, release: generated.release), "the two protobuf decoders disagree")
    }
    return 0
}

/// Whether `bytes` hold a `\u` escape of a high surrogate from D840 up: SwiftProtobuf composes
/// such a pair with the wrong scalar (`0x10000 | high << 10 | low`, where `high << 10` already
/// reaches bit 16), the plain reader with the right one.
func escapesAPairAbovePlane1(_ bytes: [UInt8]) -> Bool {
    let text = String(decoding: bytes, as: UTF8.self).lowercased()
    var rest = text[...]
    while let escape = rest.firstRange(of: "\\ud") {
        rest = rest[escape.upperBound...]
        guard let next = rest.first, let value = next.hexDigitValue else { continue }
        if value >= 8 && value <= 0xb && !(value == 8 && rest.dropFirst().first.map { "0123".contains($0) } == true) {
            return true
        }
    }
    return false
}

/// What the executor parses JSON with: unknown fields refused.
let strictJSON = {
    var options = JSONDecodingOptions()
    options.ignoreUnknownFields = false
    return options
}()

let resultsJSONOptions = {
    var options = JSONEncodingOptions()
    options.preserveProtoFieldNames = true
    return options
}()

runFuzzer(fuzzClosure)
