import HarnessJobs
import Foundation

/// The closure-task contract as the harness speaks it (JSON forms of the worker protocol's
/// `Closure`, `MiniTaskBatch` and `MiniTaskResults`). Kept in one place so that it can follow
/// the contract if it changes.
enum ClosureWire {
    /// `TaskInfo.data` of a closure task: `{"function": …, "payload": "<base64>"}`.
    static func taskData(function: String, payload: [UInt8]) -> [UInt8] {
        encode(["function": function, "payload": Data(payload).base64EncodedString()])
    }

    /// A framework MESSAGE payload carrying mini-tasks: `{"tasks": [{"id", "function", "payload"}]}`.
    static func batch(_ tasks: [MiniTaskSpec]) -> [UInt8] {
        let items: [[String: String]] = tasks.map { task in
            ["id": task.id, "function": task.function, "payload": Data(task.payload).base64EncodedString()]
        }
        return encode(["tasks": items])
    }

    /// One mini-task result from an executor MESSAGE.
    struct Result: Sendable, Hashable {
        var id: String
        /// Spark state name: FINISHED, FAILED, KILLED, LOST.
        var state: String
        var data: [UInt8]
        var error: String
        var dataFile: String
    }

    /// The results in an executor MESSAGE, or nil when it carries none (not JSON, or another shape).
    /// A closure task's progress MESSAGE (`{"progress": {"task_id", "fraction", "message", "sequence"}}`).
    static func progress(_ message: Data, atMs: Double) -> ProgressRecord? {
        guard message.first == UInt8(ascii: "{"),
            let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any],
            let progress = object["progress"] as? [String: Any], let taskID = progress["task_id"] as? String
        else { return nil }
        return ProgressRecord(
            atMs: atMs, taskID: taskID, fraction: (progress["fraction"] as? NSNumber)?.doubleValue ?? 0,
            message: progress["message"] as? String ?? "", sequence: (progress["sequence"] as? NSNumber)?.intValue ?? 0)
    }

    static func results(_ message: Data) -> [Result]? {
        guard let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any],
            let items = object["results"] as? [[String: Any]]
        else { return nil }
        return items.compactMap { item in
            guard let id = item["id"] as? String else { return nil }
            let data = (item["data"] as? String).flatMap { Data(base64Encoded: $0) }.map(Array.init) ?? []
            return Result(
                id: id, state: (item["state"] as? String) ?? "FINISHED", data: data,
                error: (item["error"] as? String) ?? "",
                dataFile: (item["data_file"] as? String) ?? "")
        }
    }

    private static func encode(_ object: Any) -> [UInt8] {
        (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])).map(Array.init) ?? []
    }
}
