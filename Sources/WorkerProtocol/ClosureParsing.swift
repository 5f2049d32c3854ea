import SwiftProtobuf
public import WorkerWire

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How a payload was encoded: replies go back the same way.
public enum PayloadEncoding: Sendable, Hashable {
    case protobuf
    case json

    /// JSON starts with `{` (after optional whitespace); a protobuf message of ours never does,
    /// since `{` would be a group start of field 15.
    public static func detect(_ bytes: some Collection<UInt8>) -> PayloadEncoding {
        let first = bytes.first { ![0x20, 0x09, 0x0a, 0x0d].contains($0) }
        return first == UInt8(ascii: "{") ? .json : .protobuf
    }
}

/// Data from the framework that is not a valid closure or mini-task batch.
public struct WorkerProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case unparseable
        case invalid
    }

    private let code: Code
    /// What is wrong, naming the field or the parser's complaint.
    public let detail: String

    static func unparseable(_ detail: String) -> Self { Self(code: .unparseable, detail: detail) }
    static func invalid(_ detail: String) -> Self { Self(code: .invalid, detail: detail) }

    public var description: String { detail }
}

extension Sparkmesos_Worker_V1_Closure {
    /// Parses `TaskInfo.data` of a closure task: the protobuf `Closure`, or its JSON form.
    public init(taskData bytes: [UInt8]) throws(WorkerProtocolError) {
        guard !bytes.isEmpty else { throw .invalid("TaskInfo.data is empty: a closure task needs a Closure message") }
        let encoding = PayloadEncoding.detect(bytes)
        if encoding == .json, let plain = MiniTask.decodePlainJSONClosure(bytes) {
            // The plain form is read directly (WorkerWire); the rest of the JSON mapping by
            // SwiftProtobuf.
            self = Self()
            (function, payload, environment) = (plain.function, Data(plain.payload), plain.environment)
        } else {
            do {
                switch encoding {
                case .json: self = try Self(jsonUTF8Bytes: bytes, options: Self.jsonOptions)
                case .protobuf: self = try Self(serializedBytes: bytes)
                }
            } catch {
                let form = encoding == .json ? "JSON" : "protobuf"
                throw .unparseable("TaskInfo.data is not a Closure (\(form), \(bytes.count) bytes): \(error)")
            }
        }
        guard !function.isEmpty else { throw .invalid("TaskInfo.data holds a Closure without a function name") }
        if let problem = MiniTask.environmentProblem(environment) { throw .invalid("the Closure's \(problem)") }
    }

    static let jsonOptions: JSONDecodingOptions = {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = false
        return options
    }()
}

extension MiniTaskBatch {
    /// Parses a framework MESSAGE payload carrying mini-tasks (or result files to release), the
    /// protobuf `MiniTaskBatch` or its JSON form; returns the batch and its encoding (the results
    /// go back in it).
    public static func parse(_ bytes: [UInt8]) throws(WorkerProtocolError) -> (MiniTaskBatch, PayloadEncoding) {
        switch PayloadEncoding.detect(bytes) {
        case .protobuf:
            do {
                return (try decode(bytes[...]), .protobuf)
            } catch {
                throw .unparseable(
                    "framework message is not a MiniTaskBatch (protobuf, \(bytes.count) bytes): \(error.detail)")
            }
        case .json:
            // The plain form schedulers write is read directly; the rest of what protobuf's JSON
            // mapping allows (`release` among it), and every refusal, is SwiftProtobuf's.
            if let tasks = MiniTask.decodePlainJSONBatch(bytes) { return (MiniTaskBatch(tasks: tasks), .json) }
            let batch: Sparkmesos_Worker_V1_MiniTaskBatch
            do {
                batch = try Sparkmesos_Worker_V1_MiniTaskBatch(
                    jsonUTF8Bytes: bytes, options: Sparkmesos_Worker_V1_Closure.jsonOptions)
            } catch {
                throw .unparseable("framework message is not a MiniTaskBatch (JSON, \(bytes.count) bytes): \(error)")
            }
            let tasks = batch.tasks.map { task in
                MiniTask(
                    id: task.id, function: task.function, payload: [UInt8](task.payload), environment: task.environment)
            }
            return (MiniTaskBatch(tasks: tasks, release: batch.release), .json)
        }
    }
}

extension MiniTaskResult {
    /// `results` as an executor MESSAGE payload, `MiniTaskResults`, in `encoding`. JSON uses the
    /// proto field names (`data_file`), as Mesos's own JSON does.
    public static func payload(_ results: [MiniTaskResult], _ encoding: PayloadEncoding) -> [UInt8] {
        switch encoding {
        case .protobuf: encodeResults(results)
        case .json: encodeResultsJSON(results)
        }
    }
}
