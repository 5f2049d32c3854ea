import MesosCodec
public import MesosProto

/// Why the executor is ending a task that did not end by itself.
public enum KillCause: Sendable, Equatable {
    /// A KILL event from the framework.
    case framework
    /// Another task of the same LAUNCH_GROUP failed or was killed.
    case groupMember(taskID: String, state: Mesos_V1_TaskState)
    /// SHUTDOWN from the agent, SIGTERM to the executor, or a lost agent.
    case shutdown(String)
    /// A second LAUNCH reused this task's id.
    case duplicateLaunch
    /// Its health check failed `consecutive_failures` times in a row; the text names the check.
    case healthCheck(String)
    /// `TaskInfo.max_completion_time` (given as text, `2s`) passed while it was still running.
    case maxCompletionTime(String)

    var text: String {
        switch self {
        case .framework: "killed by the framework"
        case .groupMember(let id, let state): "killed because task '\(id)' of its group ended \(state.name)"
        case .shutdown(let why): "killed because the executor is shutting down (\(why))"
        case .duplicateLaunch: "killed because another LAUNCH reused its task id"
        case .healthCheck(let why): "killed because \(why)"
        case .maxCompletionTime(let limit): "killed because it exceeded its max_completion_time of \(limit)"
        }
    }
}
