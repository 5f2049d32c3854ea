public import Isolation
public import ProcessSupervision

/// How the pool starts and drives its workers. A plain value: read the environment and Spark
/// properties at the command and fill this in.
public struct WorkerPoolConfiguration: Sendable {
    /// Fine: a fresh worker process per closure. Coarse: long-lived warm workers.
    public enum Mode: Sendable, Equatable {
        /// Each call gets a fresh worker that exits after it; at most `maximumWorkers` at once
        /// (further calls wait).
        case fine(maximumWorkers: Int = 16)
        /// `workers` workers started eagerly and replaced when they die.
        case coarse(workers: Int)
    }

    /// The worker program (absolute, or relative to the working directory); see ``resolveProgram(_:packageRoot:)``.
    public var program: String
    /// argv after argv[0].
    public var arguments: [String]
    /// The workers' complete base environment ("MESOS_SANDBOX" is added).
    public var environment: [String: String]
    /// The sandbox: workers' working directory, home of their logs and of large results.
    public var sandbox: String
    public var mode: Mode
    /// The most mini-tasks in flight per coarse worker. Pipelining hides the round trip and lets
    /// many runs share each write and wake-up; within this bound the depth follows the worker's
    /// pace, so that what is queued in a worker amounts to about ``pipelineBudget`` of its time
    /// (see ``PipelinePacer``). A worker starts with at most 32.
    public var pipelineDepth: Int
    /// About how much of a worker's time the mini-tasks queued in it may amount to: what a Mesos
    /// task given to that worker next may wait for, beyond the run in progress.
    public var pipelineBudget: Duration = .milliseconds(5)
    /// The most memory the mini-tasks the pool holds (queued for a worker, or sent and awaiting
    /// their results) may take, as ``WorkerPool/heldBytes(payload:taskID:function:environment:)``
    /// counts it: a mini-task that would go beyond it ends at once, `unavailable` (LOST), and the
    /// rest of the pool is unaffected. The executor's memory counts against its container's limit,
    /// so a framework that sends more than this at once gets some back to send again rather than
    /// an executor killed by the kernel.
    public var maximumHeldMiniTaskBytes: Int = Self.defaultMaximumHeldMiniTaskBytes
    public static let defaultMaximumHeldMiniTaskBytes = 512 * 1024 * 1024
    /// How long a new worker may take to say hello before it is killed.
    public var helloTimeout: Duration
    /// At shutdown, how long workers get to exit after their input closes before SIGKILL.
    public var shutdownGracePeriod: Duration
    /// The largest message a worker may send.
    public var maximumMessageSize: Int
    /// Fine mode: start the worker program once as a fork server and fork each fresh worker from
    /// it (a program that does not offer it is spawned per task as without).
    public var forkServer: Bool
    /// Hears what a person operating the executor should know (the fork server's fate).
    public var notice: @Sendable (String) -> Void
    /// How long the fork server may take to answer a request before it is given up.
    public var forkServerAnswerTimeout: Duration = .seconds(5)
    /// Cgroups for workers: in fine mode each task's worker gets one with the task's limits; in
    /// coarse mode the workers share one `pool` cgroup with ``poolLimits`` and each has a child of it.
    public var isolation: CgroupIsolation?
    /// Coarse mode: the limits the workers share (the executor's memory and cpus).
    public var poolLimits: CgroupLimits = .none
    /// How workers' stdout/stderr files (and the fork server's) are bounded.
    public var logRotation: LogRotation = .default

    public init(
        program: String, sandbox: String, mode: Mode, environment: [String: String] = [:], arguments: [String] = [],
        pipelineDepth: Int = 256, helloTimeout: Duration = .seconds(10), shutdownGracePeriod: Duration = .seconds(3),
        maximumMessageSize: Int = 256 * 1024 * 1024, forkServer: Bool = true,
        notice: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.program = program
        self.arguments = arguments
        self.environment = environment
        self.sandbox = sandbox
        self.mode = mode
        self.pipelineDepth = pipelineDepth
        self.helloTimeout = helloTimeout
        self.shutdownGracePeriod = shutdownGracePeriod
        self.maximumMessageSize = maximumMessageSize
        self.forkServer = forkServer
        self.notice = notice
    }

    /// Resolves the value of `spark.mesos.executor.worker`: an absolute path is used as is, a
    /// relative one is taken inside the package (`packageRoot`, i.e. SPARK_HOME).
    public static func resolveProgram(_ property: String?, packageRoot: String?) throws(WorkerPoolError) -> String {
        guard let property, !property.isEmpty else { throw .programNotSet }
        if property.hasPrefix("/") { return property }
        guard let root = packageRoot, !root.isEmpty else { throw .relativeProgramWithoutRoot(property) }
        let trimmed = property.hasPrefix("./") ? String(property.dropFirst(2)) : property
        return root.hasSuffix("/") ? root + trimmed : root + "/" + trimmed
    }
}
