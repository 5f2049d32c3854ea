/// Everything about one run of a job: what each task did against what the job expected, every
/// call and event with its time, protocol violations, and whether the run passed.
public struct RunReport: Sendable, Codable {
    /// The job's name and where it came from.
    public var job: String
    public var source: String
    /// coarse or fine.
    public var mode: String
    /// protobuf or json.
    public var encoding: String
    public var checkpoint: Bool
    /// The executor binary run.
    public var executor: String
    /// When the run started (ISO 8601) and how long it took.
    public var startedAt: String
    public var durationMs: Double
    /// True when every task and mini-task ended as expected, updates were exactly-once, the agent
    /// saw no protocol violation and nothing was left running.
    public var passed: Bool
    /// Why it did not pass, one line each.
    public var problems: [String]
    /// True when the run was cut short by Ctrl-C.
    public var interrupted: Bool
    /// How the executor process ended ("exited with status 0").
    public var executorExit: String
    /// The package URI given to the executor, and how often it was downloaded from the harness.
    public var packageURI: String?
    public var packageDownloads: Int
    public var tasks: [TaskReport]
    public var miniTasks: [MiniTaskReport]
    /// Violations the local agent detected ("kind: detail").
    public var violations: [String]
    /// Processes the executor left running when it ended (killed by the harness).
    public var leftoverProcesses: [String]
    /// The sandbox, when kept.
    public var sandbox: String?
    /// The end of the executor's own log (its stderr), when the run did not pass.
    public var executorLog: String?
    /// The full record: steps, calls, events, updates.
    public var log: RunLog
}

/// One task: expected and actual end, its states in order with times.
public struct TaskReport: Sendable, Codable {
    public var id: String
    /// command or closure.
    public var kind: String
    /// The expected end state (TASK_FINISHED, …) and the last state the agent holds.
    public var expected: String
    public var actual: String?
    public var passed: Bool
    /// Every state in the order the agent accepted them.
    public var states: [TaskStateRecord]
    public var launchedAtMs: Double?
    public var endedAtMs: Double?
    public var durationMs: Double?
    /// What it produced: `TaskStatus.data`, or the first line of the command's stdout.
    public var result: String?
    /// Why it did not finish: the terminal update's message.
    public var error: String?
    /// "exit 3" or "SIGKILL", when the executor said so.
    public var exit: String?
    /// Each state reported once, every executor update acknowledged.
    public var exactlyOnce: Bool
    /// How many times updates of this task were sent again (allowed: retries across restarts).
    public var resends: Int
    /// The terminal update's usage labels (`usage.peak_memory_bytes`, …), when the executor sent them.
    public var usage: [String: String]? = nil
    /// The terminal update's `limitation` (resource → amount), when a limit ended the task.
    public var limitation: [String: Double]? = nil
    /// A closure task's progress messages (all of them are in `log.progress`): how many, and the last.
    public var progressMessages: Int? = nil
    public var lastProgress: ProgressRecord? = nil
}

/// One state of a task.
public struct TaskStateRecord: Sendable, Codable {
    public var state: String
    public var atMs: Double
    public var source: String
    public var reason: String?
    public var message: String?
    public var acknowledged: Bool
    /// `healthy` of the update, when set (health updates and the end of a health-killed task).
    public var healthy: Bool?
    /// The check result of a check update.
    public var check: String?
}

/// One mini-task: expected and actual end.
public struct MiniTaskReport: Sendable, Codable {
    public var id: String
    public var function: String
    public var expected: String
    /// The Spark state the result named (FINISHED, FAILED, …), nil when no result came back.
    public var actual: String?
    public var passed: Bool
    public var sentAtMs: Double?
    public var endedAtMs: Double?
    public var result: String?
    public var error: String?
    /// How many times the same result came again from a restarted agent (the executor resent a
    /// MESSAGE whose answer the dying agent cut; README *Reliability*); nil for none.
    public var resent: Int? = nil
}

/// All runs of one harness invocation (the demo has two), as `--report` writes them.
public struct HarnessReport: Sendable, Codable {
    public var passed: Bool
    public var runs: [RunReport]

    /// The report of `runs`.
    public init(runs: [RunReport]) {
        self.runs = runs
        self.passed = runs.allSatisfy(\.passed)
    }
}
