public import MesosCodec
public import MesosProto

/// One run of the executor under the harness: how it is configured, the tasks it may be given,
/// the steps that drive it, and what each task must end as.
public struct Job: Sendable {
    /// Shown in the output and the report.
    public var name: String
    /// Where the job came from (a file path, or "built-in demo").
    public var source: String
    /// How the executor is configured.
    public var executor: ExecutorSettings
    /// The tasks, in the order they are declared.
    public var tasks: [JobTask]
    /// What the harness does, in order. A job file without `steps` launches every task, waits
    /// for them to end and shuts the executor down.
    public var steps: [JobStep]
    /// How long the whole job may take before the harness gives up on it.
    public var timeout: Duration

    /// A job; `steps` empty means the default script described on ``steps``.
    public init(
        name: String, source: String, executor: ExecutorSettings = ExecutorSettings(), tasks: [JobTask],
        steps: [JobStep] = [], timeout: Duration = .seconds(120)
    ) {
        self.name = name
        self.source = source
        self.executor = executor
        self.tasks = tasks
        self.steps = steps.isEmpty ? [.launch(tasks.map(\.id)), .waitForAll, .shutdown] : steps
        self.timeout = timeout
    }

    /// The task declared with `id`.
    public func task(_ id: String) -> JobTask? { tasks.first { $0.id == id } }

    /// Every mini-task the steps send, in order.
    public var miniTasks: [MiniTaskSpec] {
        steps.flatMap { step -> [MiniTaskSpec] in
            if case .miniTasks(let batch) = step { return batch }
            return []
        }
    }
}

/// Spark's two ways of running an executor.
public enum ExecutorMode: String, Sendable, Hashable, CaseIterable, Codable {
    /// One long-lived executor runs many tasks (`spark.mesos.coarse=true`).
    case coarse
    /// One Mesos task per Spark task (`spark.mesos.coarse=false`).
    case fine
}

/// The executor's configuration as a framework would set it.
public struct ExecutorSettings: Sendable {
    /// `spark.mesos.coarse`.
    public var mode: ExecutorMode = .coarse
    /// Encoding of calls and events.
    public var encoding: WireEncoding = .protobuf
    /// `FrameworkInfo.checkpoint`: whether the executor survives agent restarts.
    public var checkpoint: Bool = false
    /// The package (`spark.executor.uri`): a local path the harness serves, or a URL used as is.
    public var package: PackageSource?
    /// Path of the worker program inside the package (`spark.mesos.executor.worker`).
    public var worker: String?
    /// Further Spark properties, passed through unchanged.
    public var properties: [String: String] = [:]
    /// `--executor_shutdown_grace_period`.
    public var shutdownGracePeriod: Duration = .seconds(5)
    /// `ExecutorInfo.resources` (scalars: `cpus`, `mem` in MB).
    public var resources: [String: Double] = [:]

    /// The defaults: coarse mode, protobuf, no checkpointing, no package.
    public init() {}

    /// The Spark properties that go into `ExecutorInfo.data`, given the package's URI.
    public func sparkProperties(packageURI: String?) -> [String: String] {
        var result = properties
        result["spark.mesos.coarse"] = mode == .coarse ? "true" : "false"
        if let packageURI { result["spark.executor.uri"] = packageURI }
        if let worker { result["spark.mesos.executor.worker"] = worker }
        return result
    }
}

/// Where the package comes from.
public enum PackageSource: Sendable, Hashable {
    /// A file or directory on this machine; a directory is packed as `.tar.gz`. Served over loopback HTTP.
    case local(path: String)
    /// A URI handed to the executor unchanged.
    case uri(String)
}

/// A task the job may launch.
public struct JobTask: Sendable {
    /// `TaskInfo.task_id`.
    public var id: String
    /// What it runs.
    public var kind: Kind
    /// The state it must end in.
    public var expect: TaskEnd
    /// `TaskInfo.kill_policy.grace_period`.
    public var killGracePeriod: Duration?
    /// `TaskInfo.health_check`.
    public var healthCheck: Mesos_V1_HealthCheck?
    /// `TaskInfo.check`.
    public var check: Mesos_V1_CheckInfo?
    /// `TaskInfo.max_completion_time`.
    public var maxCompletionTime: Duration?
    /// `TaskInfo.resources` (scalars: `cpus`, `mem` in MB, `disk` in MB).
    public var resources: [String: Double]
    /// `TaskInfo.limits` (`cpus`, `mem` in MB; infinity for `"unlimited"`).
    public var limits: [String: Double]

    /// A task.
    public init(
        id: String, kind: Kind, expect: TaskEnd = .finished, killGracePeriod: Duration? = nil,
        healthCheck: Mesos_V1_HealthCheck? = nil, check: Mesos_V1_CheckInfo? = nil, maxCompletionTime: Duration? = nil,
        resources: [String: Double] = [:], limits: [String: Double] = [:]
    ) {
        self.resources = resources
        self.limits = limits
        self.id = id
        self.kind = kind
        self.expect = expect
        self.killGracePeriod = killGracePeriod
        self.healthCheck = healthCheck
        self.check = check
        self.maxCompletionTime = maxCompletionTime
    }

    /// Command or closure.
    public enum Kind: Sendable, Hashable {
        /// `TaskInfo.command`.
        case command(CommandSpec)
        /// `TaskInfo.data` naming a worker function and its payload.
        case closure(function: String, payload: [UInt8])

        /// "command" or "closure".
        public var name: String {
            switch self {
            case .command: "command"
            case .closure: "closure"
            }
        }
    }
}

/// `CommandInfo`: a shell line, or a program with arguments.
public struct CommandSpec: Sendable, Hashable {
    /// The shell line, or the program when `shell` is false.
    public var value: String
    /// Run through `sh -c`.
    public var shell: Bool = true
    /// argv when `shell` is false.
    public var arguments: [String] = []
    /// Extra environment variables.
    public var environment: [String: String] = [:]
    /// `CommandInfo.user`: the user the task runs as (nil: the executor's).
    public var user: String?

    /// A command.
    public init(
        value: String, shell: Bool = true, arguments: [String] = [], environment: [String: String] = [:],
        user: String? = nil
    ) {
        self.value = value
        self.shell = shell
        self.arguments = arguments
        self.environment = environment
        self.user = user
    }
}

/// How a task or mini-task must end.
public enum TaskEnd: String, Sendable, Hashable, CaseIterable, Codable {
    case finished, failed, killed, error, lost

    /// The Mesos state name, e.g. `TASK_FINISHED`.
    public var mesosName: String { "TASK_" + rawValue.uppercased() }
}

/// A mini-task sent in a framework message.
public struct MiniTaskSpec: Sendable, Hashable {
    public var id: String
    public var function: String
    public var payload: [UInt8]
    public var expect: TaskEnd

    /// A mini-task.
    public init(id: String, function: String, payload: [UInt8], expect: TaskEnd = .finished) {
        self.id = id
        self.function = function
        self.payload = payload
        self.expect = expect
    }
}

/// One thing the harness does to the executor.
public enum JobStep: Sendable, Hashable {
    /// LAUNCH each task, in order.
    case launch([String])
    /// One LAUNCH_GROUP with these tasks.
    case launchGroup([String])
    /// Wait until each task has reached (or passed) the state.
    case wait([String: WaitTarget])
    /// Wait until every launched task and mini-task has ended.
    case waitForAll
    /// KILL, with an optional kill-policy grace period.
    case kill(String, grace: Duration?)
    /// A framework MESSAGE with these bytes.
    case message([UInt8])
    /// A framework MESSAGE carrying these mini-tasks.
    case miniTasks([MiniTaskSpec])
    /// The agent goes down and comes straight back; with checkpointing the harness waits for
    /// the executor to re-subscribe.
    case restartAgent(AgentRestart)
    /// Nothing for this long: an executor left idle (it gives memory back 2 s after its last
    /// task), or tasks left running, before the next step.
    case pause(Duration)
    /// SHUTDOWN.
    case shutdown
}

/// When a `restart_agent` step's agent goes down.
public enum AgentRestart: String, Sendable, Hashable, CaseIterable {
    /// At once (`"restart_agent": true`).
    case now
    /// As it stores the executor's next MESSAGE, before answering it (`"restart_agent":
    /// "at_next_message"`): the executor must send that MESSAGE again to the next agent.
    case atNextMessage = "at_next_message"
}

/// A state a `wait` step waits for.
public enum WaitTarget: String, Sendable, Hashable, CaseIterable {
    /// TASK_STARTING or later.
    case starting
    /// TASK_RUNNING or any terminal state.
    case running
    /// Any terminal state.
    case ended
}
