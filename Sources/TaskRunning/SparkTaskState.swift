public import MesosProto

/// Spark's `TaskState`, the executor's internal view of a task, and the one place where it maps
/// onto Mesos (`MesosSchedulerBackendUtil.taskStateToMesos`).
///
/// | Spark     | Mesos         |
/// |-----------|---------------|
/// | LAUNCHING | TASK_STARTING |
/// | RUNNING   | TASK_RUNNING  |
/// | FINISHED  | TASK_FINISHED |
/// | FAILED    | TASK_FAILED   |
/// | KILLED    | TASK_KILLED   |
/// | LOST      | TASK_LOST     |
///
/// Two Mesos states have no Spark counterpart: TASK_KILLING (sent only to frameworks with the
/// TASK_KILLING_STATE capability) and TASK_ERROR (a task that could not be started at all).
public enum SparkTaskState: String, Sendable, CaseIterable {
    case launching = "LAUNCHING"
    case running = "RUNNING"
    case finished = "FINISHED"
    case failed = "FAILED"
    case killed = "KILLED"
    case lost = "LOST"

    public var mesosState: Mesos_V1_TaskState {
        switch self {
        case .launching: .taskStarting
        case .running: .taskRunning
        case .finished: .taskFinished
        case .failed: .taskFailed
        case .killed: .taskKilled
        case .lost: .taskLost
        }
    }

    /// Spark's `TaskState.isFinished`.
    public var isFinished: Bool {
        switch self {
        case .finished, .failed, .killed, .lost: true
        case .launching, .running: false
        }
    }
}
