/// Everything recorded during one run, with times in milliseconds since it started.
public struct RunLog: Sendable, Codable {
    /// What the harness did.
    public var steps: [StepRecord] = []
    /// Every request the executor made, and the agent's answer.
    public var calls: [CallRecord] = []
    /// Every event the agent emitted.
    public var events: [EventRecord] = []
    /// Every distinct status update the agent accepted.
    public var updates: [UpdateRecord] = []
    /// Every executor MESSAGE.
    public var executorMessages: [MessageRecord] = []
    /// Closure tasks' progress messages, in order.
    public var progress: [ProgressRecord] = []
    /// Mini-task results by id (the first one seen).
    public var miniTaskResults: [String: MiniTaskResultRecord] = [:]
    /// How many results arrived for each mini-task id, not counting ``miniTaskResends`` (exactly
    /// one is right).
    public var miniTaskAnswers: [String: Int] = [:]
    /// Mini-task results that came again, unchanged, from an agent that restarted since the last
    /// one came, by id: an executor sends a result MESSAGE again when a dying agent cut its answer
    /// (at least once, README *Reliability*). Nil in reports written before it was recorded.
    public var miniTaskResends: [String: Int]? = nil
    /// How many mini-tasks were sent.
    public var miniTasksSent = 0
    /// When each task was launched.
    public var launchedAt: [String: Double] = [:]
    /// When the executor process ended.
    public var executorExitAtMs: Double?
}

/// One harness action.
public struct StepRecord: Sendable, Codable {
    /// The kinds of marks on the timeline.
    public enum Kind: String, Sendable, Codable {
        case start, launch, wait, kill, message, miniTasks, restartAgent, shutdown, problem
    }
    public var atMs: Double
    public var kind: Kind
    public var detail: String
    public var tasks: [String]
}

/// One executor call.
public struct CallRecord: Sendable, Codable {
    public var atMs: Double
    /// The call type (SUBSCRIBE, UPDATE, MESSAGE, HEARTBEAT), or the HTTP method when it did not parse.
    public var type: String
    /// The HTTP status the agent answered.
    public var status: Int
    /// The agent's error text, empty on success.
    public var message: String
}

/// One agent event.
public struct EventRecord: Sendable, Codable {
    public var atMs: Double
    public var type: String
    /// False when no stream was open to carry it.
    public var delivered: Bool
    /// The subscription stream (1-based) it went to.
    public var stream: Int?
    /// The task it concerns, if any.
    public var detail: String
}

/// One status update as the agent accepted it.
public struct UpdateRecord: Sendable, Codable {
    public var atMs: Double
    public var taskID: String
    public var state: String
    /// The update's uuid in hex.
    public var uuid: String
    /// "executor", "agent" (made by the agent), or "harness" (made up for a task whose executor
    /// ended without reporting it, as the agent would).
    public var source: String
    public var reason: String?
    public var message: String?
    /// `TaskStatus.data` as text.
    public var data: String?
    /// `TaskStatus.healthy`, when set.
    public var healthy: Bool?
    /// `TaskStatus.check_status` of a check update, e.g. `exit_code=0`, `status_code=200`, `empty`.
    public var check: String?
    /// `TaskStatus.labels` (the executor's usage figures on a terminal update).
    public var labels: [String: String]? = nil
    /// `TaskStatus.limitation`: the resources whose limit ended the task, e.g. `mem` → 64.
    public var limitation: [String: Double]? = nil
}

/// One executor MESSAGE.
public struct MessageRecord: Sendable, Codable {
    public var atMs: Double
    public var bytes: Int
}

/// One mini-task's result, as it came back in an executor MESSAGE.
public struct MiniTaskResultRecord: Sendable, Codable {
    public var atMs: Double
    public var state: String
    public var data: String
    public var error: String
    public var dataFile: String

    init(atMs: Double, result: ClosureWire.Result) {
        self.atMs = atMs
        self.state = result.state
        self.data = String(decoding: result.data, as: UTF8.self)
        self.error = result.error
        self.dataFile = result.dataFile
    }
}

/// One progress MESSAGE of a closure task.
public struct ProgressRecord: Sendable, Codable, Equatable {
    public var atMs: Double
    public var taskID: String
    /// From 0 to 1.
    public var fraction: Double
    public var message: String
    /// Counts the task's progress messages from 1.
    public var sequence: Int
}
