public import Isolation
public import MesosProto
public import ProcessSupervision
import SystemSupport

/// Runs tasks from start to end: the one way the runtime starts a task.
public protocol TaskRunner: Sendable {
    /// Runs `task` to its end and says how it ended. Calls `control.started()` once the task is
    /// running, and obeys the stop requests that `control` hands it (``TaskControl/onStopRequest(_:)``).
    func run(_ task: Mesos_V1_TaskInfo, control: TaskControl) async -> TaskOutcome
}

/// What the runtime tells the side that runs tasks about the executor as a whole: it subscribed,
/// a framework message came, it is shutting down; and what that side knows of a task's
/// environment for its checks. Every hook has a default that does nothing.
public protocol ExecutorHooks: Sendable {
    /// Called once, at the first SUBSCRIBED, before any task of it runs. Returns background work
    /// (fetching the package, starting workers) that the runtime runs alongside the tasks.
    func executorSubscribed(_ subscribed: Mesos_V1_Executor_Event.Subscribed) async -> (@Sendable () async -> Void)?

    /// A framework MESSAGE. `reply` sends an executor MESSAGE back to the framework. Returns false
    /// when there is no use for messages (the runtime then logs and drops it). `data` is handed
    /// over: the runtime keeps no copy, so that a batch of mini-tasks, once decoded, is not also
    /// held as bytes for as long as it runs.
    func frameworkMessage(_ data: consuming [UInt8], reply: @escaping @Sendable ([UInt8]) async -> Void) async -> Bool

    /// The executor begins shutting down: stop long-lived helpers (workers) after the tasks.
    func executorShuttingDown() async

    /// How the task's COMMAND health checks and checks run: with the task's own environment (the
    /// check command's variables are added on top), in its working directory, as its user, as its
    /// runner runs it.
    func checkProcess(for task: Mesos_V1_TaskInfo) async -> CheckProcess
}

/// How a task's COMMAND checks run (``ExecutorHooks/checkProcess(for:)``).
public struct CheckProcess: Sendable {
    public var environment: [String: String]
    /// Nil: the sandbox.
    public var workingDirectory: String?
    /// Nil: the executor's user.
    public var user: UserIdentity?
    /// Why check commands cannot run as the task runs (its user cannot be switched to, say): each
    /// check command then ends in this error instead of running otherwise.
    public var unavailable: String?

    public init(
        environment: [String: String] = [:], workingDirectory: String? = nil, user: UserIdentity? = nil,
        unavailable: String? = nil
    ) {
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.user = user
        self.unavailable = unavailable
    }
}

extension ExecutorHooks {
    public func executorSubscribed(_ subscribed: Mesos_V1_Executor_Event.Subscribed) async
        -> (@Sendable () async -> Void)?
    {
        nil
    }

    public func frameworkMessage(_ data: consuming [UInt8], reply: @escaping @Sendable ([UInt8]) async -> Void)
        async -> Bool
    {
        false
    }

    public func executorShuttingDown() async {}

    public func checkProcess(for task: Mesos_V1_TaskInfo) async -> CheckProcess { CheckProcess() }
}

/// Hooks that do nothing: for a runtime whose runner needs none.
public struct NoExecutorHooks: ExecutorHooks {
    public init() {}
}

/// What the executor asks of a running task.
public enum StopRequest: Sendable, Equatable {
    /// Ask politely: SIGTERM to the process tree, or cancel the closure.
    case terminate
    /// Stop now: SIGKILL to the process tree, or kill the worker.
    case forceKill
}

/// The channel between the runtime and one running task.
public struct TaskControl: Sendable {
    private let stops = StopRelay()
    private let onStarted: @Sendable () async -> Void
    private let onProgress: (@Sendable (Double, String) -> Void)?
    private let onProcessEnded: (@Sendable () async -> Void)?
    private let measured = MeasurementBox()

    /// A control whose `started()` calls `onStarted`, whose `reportProgress` calls `onProgress`
    /// and whose `processEnded()` calls `onProcessEnded`.
    public init(
        onStarted: @escaping @Sendable () async -> Void, onProgress: (@Sendable (Double, String) -> Void)? = nil,
        onProcessEnded: (@Sendable () async -> Void)? = nil
    ) {
        self.onStarted = onStarted
        self.onProgress = onProgress
        self.onProcessEnded = onProcessEnded
    }

    /// How far the task got (a closure's report): forwarded to the framework, rate-limited.
    public func reportProgress(_ fraction: Double, message: String) { onProgress?(fraction, message) }

    /// Tells the executor the task is running (it reports TASK_RUNNING).
    public func started() async { await onStarted() }

    /// What the runner measured of the task (usage, a limit it hit); it goes into the terminal update.
    public func record(_ measurements: TaskMeasurements) { measured.value.withLock { $0 = measurements } }

    /// What was recorded so far.
    public var measurements: TaskMeasurements { measured.value.withLock { $0 } }

    /// The runner says which cgroup the task runs in, so that its COMMAND checks run there too.
    public func runs(in cgroup: Cgroup?) { measured.cgroup.withLock { $0 = cgroup } }

    /// The task's cgroup, once its runner named it.
    public var cgroup: Cgroup? { measured.cgroup.withLock { $0 } }

    /// The runner says the task's own process has ended, before it cleans up after it (kills what
    /// the task left in its cgroup, a COMMAND check's process among it): the executor stops the
    /// task's checks and deadline and ignores kills from then on, and its outcome is the process's.
    public func processEnded() async { await onProcessEnded?() }

    /// Delivers a stop request to the running task: to its runner's handler, or kept for it until
    /// the runner gives one. Dropped once the task's run is over.
    public func request(_ stop: StopRequest) { stops.deliver(stop) }

    /// The task's run is over: later stop requests go nowhere, and the runner's handler is let go.
    public func finish() { stops.finish() }

    /// The runner hears the task's stop requests through `handler`, in order: those made before
    /// at once, the rest as they are made, on the thread that makes them (so it must not block:
    /// it hands a request on). Given once. No task of its own waits for them, so a runner whose
    /// task is never stopped pays nothing for it.
    public func onStopRequest(_ handler: @escaping @Sendable (StopRequest) -> Void) { stops.attach(handler) }

    /// The stop requests as a stream, for a runner that awaits them: it finishes once the task's
    /// run is over. Uses ``onStopRequest(_:)``.
    public func stopRequestStream() -> AsyncStream<StopRequest> {
        let (requests, continuation) = AsyncStream.makeStream(of: StopRequest.self)
        stops.attach({ continuation.yield($0) }, onFinish: { continuation.finish() })
        return requests
    }
}

/// One task's stop requests on their way from the runtime to its runner, shared by the copies of
/// its ``TaskControl``: kept until the runner attaches its handler, then handed straight to it.
/// The handler is called under the relay's lock, so requests reach it in the order made however
/// the attaching and the requests interleave.
private final class StopRelay: Sendable {
    private struct State {
        var kept: [StopRequest] = []
        var handler: (@Sendable (StopRequest) -> Void)?
        var onFinish: (@Sendable () -> Void)?
        var finished = false
    }
    private let state = LockedValue(State())

    func attach(_ handler: @escaping @Sendable (StopRequest) -> Void, onFinish: (@Sendable () -> Void)? = nil) {
        state.withLock { state in
            precondition(state.handler == nil, "a task's stop requests have one handler")
            guard !state.finished else {
                onFinish?()
                return
            }
            for stop in state.kept { handler(stop) }
            state.kept = []
            state.handler = handler
            state.onFinish = onFinish
        }
    }

    func deliver(_ stop: StopRequest) {
        state.withLock { state in
            guard !state.finished else { return }
            if let handler = state.handler { handler(stop) } else { state.kept.append(stop) }
        }
    }

    func finish() {
        state.withLock { state in
            guard !state.finished else { return }
            state.finished = true
            state.onFinish?()
            state.handler = nil
            state.onFinish = nil
            state.kept = []
        }
    }
}

/// What the runner tells of one task (its measurements, its cgroup), shared by the copies of its
/// ``TaskControl``.
private final class MeasurementBox: Sendable {
    let value = LockedValue(TaskMeasurements())
    let cgroup = LockedValue<Cgroup?>(nil)
}
