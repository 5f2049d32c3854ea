import MesosProto

/// How health and check updates read in the console, the report and the timeline.
enum CheckText {
    /// `exit_code=0`, `status_code=200`, `succeeded=true`, or `empty` (the check gave no result).
    static func of(_ status: Mesos_V1_CheckStatusInfo) -> String {
        switch status.type {
        case .command: status.command.hasExitCode ? "exit_code=\(status.command.exitCode)" : "empty"
        case .http: status.http.hasStatusCode ? "status_code=\(status.http.statusCode)" : "empty"
        case .tcp: status.tcp.hasSucceeded ? "succeeded=\(status.tcp.succeeded)" : "empty"
        case .unknown: "unknown"
        }
    }

    /// ` (healthy)`, ` (unhealthy)`, ` (check: status_code=200)` or nothing, for a console line.
    static func annotation(_ status: Mesos_V1_TaskStatus) -> String {
        if status.reason == .taskCheckStatusUpdated { return " (check: \(of(status.checkStatus)))" }
        guard status.hasHealthy else { return "" }
        return status.healthy ? " (healthy)" : " (unhealthy)"
    }

    /// Whether a recorded reason marks a health or check update (which repeat TASK_RUNNING).
    static func isCheckReason(_ reason: String?) -> Bool {
        reason == "\(Mesos_V1_TaskStatus.Reason.taskHealthCheckStatusUpdated)"
            || reason == "\(Mesos_V1_TaskStatus.Reason.taskCheckStatusUpdated)"
    }
}
