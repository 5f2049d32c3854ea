public import MesosProto

/// How a task ended, as its runner saw it. A task's own failure is a value, never a thrown error.
public enum TaskOutcome: Sendable, Equatable {
    /// Ran to completion; `data` becomes `TaskStatus.data`; `dataFile`, the sandbox file a result
    /// too large for `data` was written to, the label `result.data_file`.
    case succeeded(data: [UInt8]?, message: String?, dataFile: String? = nil)
    /// Started but failed (non-zero exit, signal, thrown closure, dead worker).
    case failed(reason: Mesos_V1_TaskStatus.Reason, message: String)
    /// Could not be started at all (invalid task data, unknown function).
    case error(reason: Mesos_V1_TaskStatus.Reason, message: String)
    /// Could not be launched (program missing, package fetch failed): TASK_FAILED before RUNNING.
    case launchFailed(reason: Mesos_V1_TaskStatus.Reason, message: String)

    /// The `TaskStatus` label that names a succeeded task's result file (`dataFile`).
    public static let dataFileLabel = "result.data_file"

    /// A short text for kill messages ("exited with status 0", "terminated by signal SIGKILL (9)").
    public var summary: String {
        switch self {
        case .succeeded(_, let message, _): message ?? "completed"
        case .failed(_, let message), .error(_, let message), .launchFailed(_, let message): message
        }
    }
}
