import Foundation
import MesosProto

/// The agent's `validateExecutorCall` (the fourth of `Http::executor`'s checks, after parsing): returns the reason a decoded call is
/// invalid, or nil. The HTTP layer answers 400 "Failed to validate Executor::Call: <reason>".
enum ExecutorCallValidation {
    static func validate(_ call: Mesos_V1_Executor_Call) -> String? {
        guard call.hasType else { return "Expecting 'type' to be present" }
        switch call.type {
        case .subscribe:
            return call.hasSubscribe ? nil : "Expecting 'subscribe' to be present"
        case .update:
            guard call.hasUpdate else { return "Expecting 'update' to be present" }
            return validate(call.update.status, executorID: call.executorID.value)
        case .message:
            return call.hasMessage ? nil : "Expecting 'message' to be present"
        case .heartbeat, .unknown:
            return nil
        }
    }

    static func validate(_ status: Mesos_V1_TaskStatus, executorID: String) -> String? {
        guard status.hasUuid else { return "Expecting 'uuid' to be present" }
        if let problem = uuidProblem(status.uuid) { return problem }
        if status.hasExecutorID && status.executorID.value != executorID {
            return
                "ExecutorID of TaskStatus: \(status.executorID.value) does not match ExecutorID of Call: \(executorID)"
        }
        if status.source != .executor {
            return "Received Call from executor \(executorID) with invalid source, expecting 'SOURCE_EXECUTOR'"
        }
        if status.state == .taskStaging {
            return "Received TASK_STAGING from executor \(executorID) which is not allowed"
        }
        if status.hasCheckStatus { return checkStatusProblem(status.checkStatus) }
        return nil
    }

    /// stout's `UUID::fromBytes`: exactly 16 bytes with an RFC 4122 version 1–5.
    static func uuidProblem(_ uuid: Data) -> String? {
        guard uuid.count == 16 else { return "Invalid UUID: expecting 16 bytes, got \(uuid.count)" }
        let version = uuid[uuid.startIndex + 6] >> 4
        guard (1...5).contains(version) else { return "Invalid UUID: version \(version) is not 1-5" }
        return nil
    }

    private static func checkStatusProblem(_ check: Mesos_V1_CheckStatusInfo) -> String? {
        guard check.hasType else { return "CheckStatusInfo must specify 'type'" }
        switch check.type {
        case .unknown: return "'UNKNOWN' is not a valid check's status type"
        case .command: return check.hasCommand ? nil : "Expecting 'command' to be set for COMMAND check's status"
        case .http: return check.hasHTTP ? nil : "Expecting 'http' to be set for HTTP check's status"
        case .tcp: return check.hasTcp ? nil : "Expecting 'tcp' to be set for TCP check's status"
        }
    }
}
