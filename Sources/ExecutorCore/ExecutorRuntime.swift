public import TaskRunning
public import AgentConnection
public import Logging
import SystemSupport
import MesosCodec
import MesosProto

/// The one owner of the executor's state: tasks, unacknowledged updates, the connection.
///
/// `run()` drives everything as child tasks of one task group — the subscription, the update
/// sender, heartbeats, every running task and every kill timer — and returns the exit code.
public actor ExecutorRuntime {
    let configuration: ExecutorConfiguration
    let client: AgentClient
    let runner: any TaskRunner
    let hooks: any ExecutorHooks
    let logger: Logger
    let heartbeatInterval: Duration

    var lifecycle = TaskLifecycle()
    var ledger = UpdateLedger()
    /// Connecting, reconnecting, shutting down and exiting.
    var executorLifecycle: ExecutorLifecycle<ContinuousClock.Instant>
    /// The backoff between re-subscriptions draws from it.
    var random = SystemRandomNumberGenerator()
    var controls: [String: TaskControl] = [:]
    /// Per task: what stops its checks and its deadline.
    var watchers: [String: [AsyncStream<Never>.Continuation]] = [:]
    var frameworkInfo: Mesos_V1_FrameworkInfo?
    /// Called once start-up is over and each time a burst of tasks or mini-tasks is over, when
    /// nothing new came for `idleSettle`.
    let whenIdle: (@Sendable () -> Void)?
    let idleSettle: Duration
    /// The shortest time between two progress MESSAGEs of one task.
    let progressInterval: Duration
    /// Whether idleness was noticed since start-up or the last LAUNCH or framework MESSAGE.
    var idleNoticed = false
    /// Counts LAUNCHes and framework MESSAGEs, so a settle timer knows whether work came in meanwhile.
    var workGeneration = 0
    /// Framework MESSAGEs whose handling has not ended: a batch of mini-tasks is work until every
    /// one of its results has been sent, as a task is until its updates are acknowledged.
    var messagesInHand = 0
    /// Each idleness noticed: the work generation then, and when it has settled. One loop waits for
    /// them (the newest only), not a sleeping child task per notice: tasks run one after another
    /// notice idleness after each, and a child per notice kept hundreds asleep (`idleSettle`
    /// each), which every other child of the runtime's group walked past when it ended.
    let idleNotices: AsyncStream<(generation: Int, settled: ContinuousClock.Instant)>
    let idleNoticeContinuation: AsyncStream<(generation: Int, settled: ContinuousClock.Instant)>.Continuation

    /// Whether ``run()`` has returned, and who waits for that (``stopped()``).
    private let ending = LockedValue<(ended: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))
    /// Every running task, kill timer and check: child tasks of `run()`'s group.
    let childTasks = ChildTaskQueue()
    let senderWakeups: AsyncStream<Void>
    let senderWakeupContinuation: AsyncStream<Void>.Continuation

    /// - Parameter exitAfterTasks: run one task only and exit once it has ended and its updates
    ///   are acknowledged, as Mesos's command executor does (we stand in for it when the agent runs
    ///   `mesos-executor`).
    public init(
        configuration: ExecutorConfiguration, client: AgentClient, runner: any TaskRunner,
        hooks: any ExecutorHooks = NoExecutorHooks(), logger: Logger,
        heartbeatInterval: Duration = .seconds(30 * 60), exitAfterTasks: Bool = false,
        whenIdle: (@Sendable () -> Void)? = nil, idleSettle: Duration = .seconds(2),
        progressInterval: Duration = .milliseconds(100)
    ) {
        self.progressInterval = progressInterval
        executorLifecycle = ExecutorLifecycle(
            settings: .init(
                checkpoint: configuration.checkpoint, recoveryTimeout: configuration.recoveryTimeout,
                subscriptionBackoffMax: configuration.subscriptionBackoffMax,
                shutdownGracePeriod: configuration.shutdownGracePeriod, exitAfterTasks: exitAfterTasks))
        lifecycle.runsOneTaskOnly = exitAfterTasks
        self.whenIdle = whenIdle
        self.idleSettle = idleSettle
        self.configuration = configuration
        self.client = client
        self.runner = runner
        self.hooks = hooks
        self.logger = logger
        self.heartbeatInterval = heartbeatInterval
        (senderWakeups, senderWakeupContinuation) = AsyncStream.makeStream(
            of: Void.self, bufferingPolicy: .bufferingNewest(1))
        (idleNotices, idleNoticeContinuation) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Runs the executor until it shuts down; returns the process exit code.
    public func run() async -> Int32 {
        await withDiscardingTaskGroup { group in
            group.addTask { await self.connectionLoop() }
            group.addTask { await self.senderLoop() }
            group.addTask { await self.heartbeatLoop() }
            if whenIdle != nil { group.addTask { await self.idleLoop() } }
            await childTasks.host(in: &group)
            group.cancelAll()
        }
        senderWakeupContinuation.finish()
        idleNoticeContinuation.finish()
        let waiters = ending.withLock { ending in
            ending.ended = true
            defer { ending.waiters = [] }
            return ending.waiters
        }
        for waiter in waiters { waiter.resume() }
        return executorLifecycle.exitCode
    }

    /// Returns once ``run()`` has returned (at once if it has). Not ended by cancellation.
    public nonisolated func stopped() async {
        await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
            let ended = ending.withLock { ending in
                if !ending.ended { ending.waiters.append(waiter) }
                return ending.ended
            }
            if ended { waiter.resume() }
        }
    }

    /// Begins a graceful shutdown (SHUTDOWN event, SIGTERM, lost agent): every task is killed
    /// within the shutdown grace period, terminal updates are sent and their ACKs awaited (bounded).
    public func shutdown(because why: String) {
        perform(executorLifecycle.shutdown(because: why, work: work, at: .now))
    }

    /// Once every task has ended and every update is acknowledged, every framework MESSAGE (a batch
    /// of mini-tasks) has been answered (or, after the first SUBSCRIBED, none came yet), and no task
    /// or MESSAGE came for `idleSettle`, `whenIdle` runs (the executor gives back the memory
    /// start-up or the burst used). Once per burst; tasks launched one after another do not pay for
    /// it each time.
    func noticeIdle() {
        guard whenIdle != nil, !idleNoticed, isIdle else { return }
        idleNoticed = true
        idleNoticeContinuation.yield((workGeneration, .now + idleSettle))
    }

    /// Runs `whenIdle` for each idleness that settled with no LAUNCH since. A notice that comes
    /// while the loop waits replaces the one not yet taken; the one it waits for, older, then
    /// finds a newer LAUNCH (deadlines come in order: each is its notice plus `idleSettle`).
    private func idleLoop() async {
        for await notice in idleNotices {
            guard (try? await Task.sleep(until: notice.settled)) != nil else { return }
            idleSettled(notice.generation)
        }
    }

    /// The child tasks started through the runtime's queue and not yet ended: each running task,
    /// progress sender of a task that reported, kill timer and check (its own loops are not counted).
    public var childTaskCount: Int { childTasks.running }

    private func idleSettled(_ generation: Int) {
        guard generation == workGeneration, isIdle else { return }
        whenIdle?()
    }

    /// No task active, no update unacknowledged, no framework MESSAGE being handled.
    private var isIdle: Bool { !lifecycle.hasActiveTasks && ledger.isEmpty && messagesInHand == 0 }

    /// A framework MESSAGE's handling ended (every result of its batch sent).
    private func messageHandled() {
        messagesInHand -= 1
        noticeIdle()
    }

    /// Whether the executor is on its way out (nothing more is sent).
    var finished: Bool { executorLifecycle.hasExited }

    /// The tasks and updates, as far as exiting depends on them.
    var work: ExecutorLifecycle<ContinuousClock.Instant>.Work {
        .init(anyLaunched: lifecycle.hasTasks, anyActive: lifecycle.hasActiveTasks, anyUnacknowledged: !ledger.isEmpty)
    }

    /// A task ended, or an update was acknowledged or dropped: maybe that was the last thing to wait for.
    func workChanged() {
        perform(executorLifecycle.workChanged(work))
    }

    /// Runs `body` as a child task of `run()`'s task group.
    func schedule(_ body: @escaping @Sendable () async -> Void) {
        childTasks.add(body)
    }

    // MARK: Events

    func handle(_ event: Mesos_V1_Executor_Event) async {
        switch event.type {
        case .subscribed:
            let subscribed = event.subscribed
            if frameworkInfo == nil, let work = await hooks.executorSubscribed(subscribed) {
                schedule(work)
            }
            frameworkInfo = subscribed.frameworkInfo
            lifecycle.killingStateAllowed = subscribed.frameworkInfo.capabilities.contains {
                $0.type == .taskKillingState
            }
            logger.info(
                "subscribed",
                metadata: [
                    "agent": "\(subscribed.agentInfo.hostname)", "container": "\(subscribed.containerID.value)",
                    "framework": "\(subscribed.frameworkInfo.name)",
                ])
            noticeIdle()
        case .launch:
            idleNoticed = false
            workGeneration += 1
            logger.info("launch", metadata: ["task": "\(event.launch.task.taskID.value)"])
            perform(lifecycle.launch(event.launch.task))
        case .launchGroup:
            idleNoticed = false
            workGeneration += 1
            let tasks = event.launchGroup.taskGroup.tasks
            logger.info("launch group", metadata: ["tasks": "\(tasks.map(\.taskID.value))"])
            perform(lifecycle.launchGroup(tasks))
        case .kill:
            let id = event.kill.taskID.value
            if lifecycle.task(id) == nil {
                logger.warning(
                    "KILL for a task not known here (never launched, or ended and acknowledged) ignored",
                    metadata: ["task": "\(id)"])
            } else if !lifecycle.isActive(id) {
                logger.info("KILL for a task that already ended ignored", metadata: ["task": "\(id)"])
            }
            logger.info("kill", metadata: ["task": "\(id)"])
            perform(lifecycle.kill(id, policy: event.kill.hasKillPolicy ? event.kill.killPolicy : nil))
        case .acknowledged:
            let uuid = [UInt8](event.acknowledged.uuid)
            let update = ledger.acknowledged(uuid: uuid)
            if update == nil {
                logger.warning(
                    "ACKNOWLEDGED for an unknown update", metadata: ["task": "\(event.acknowledged.taskID.value)"])
            }
            lifecycle.acknowledged(event.acknowledged.taskID.value, state: update?.status.state)
            workChanged()
            noticeIdle()
        case .message:
            idleNoticed = false
            workGeneration += 1
            messagesInHand += 1
            let size = event.message.data.count
            // Taken, not captured: the hook gets the only reference (see `frameworkMessage`).
            let message = LockedValue<[UInt8]?>([UInt8](event.message.data))
            let hooks = self.hooks
            let logger = self.logger
            schedule {
                let handled = await hooks.frameworkMessage(message.withLock { $0.take() } ?? []) { reply in
                    await self.deliverMessage(reply)
                }
                if !handled { logger.info("framework message ignored", metadata: ["bytes": "\(size)"]) }
                await self.messageHandled()
            }
        case .error:
            logger.error("agent reported an error", metadata: ["message": "\(event.error.message)"])
        case .shutdown:
            shutdown(because: "SHUTDOWN from the agent")
        case .heartbeat:
            logger.debug("heartbeat")
        case .unknown:
            logger.warning("event of unknown type ignored", metadata: ["type": "\(event.type.rawValue)"])
        }
    }

    // MARK: Actions

    /// `measurements` go with the terminal report of their task.
    func perform(_ actions: [TaskLifecycle.Action], measurements: (taskID: String, TaskMeasurements)? = nil) {
        for action in actions {
            switch action {
            case .report(let report):
                record(report, measurements: report.taskID == measurements?.taskID ? measurements?.1 : nil)
            case .start(let id):
                guard let task = lifecycle.task(id) else { continue }
                startTask(task)
            case .terminate(let id, let grace):
                controls[id]?.request(.terminate)
                schedule {
                    try? await Task.sleep(for: grace)
                    await self.graceExpired(id)
                }
            case .forceKill(let id):
                controls[id]?.request(.forceKill)
            case .startChecks(let id, let checks):
                startChecks(id, checks)
            case .armDeadline(let id, let after):
                armDeadline(id, after: after)
            case .stopWatching(let id):
                stopWatching(id)
            }
        }
    }

    private func startTask(_ task: Mesos_V1_TaskInfo) {
        let id = task.taskID.value
        let forwarder = ProgressForwarder(
            taskID: id, interval: progressInterval, start: { [childTasks] in childTasks.add($0) }
        ) { [weak self] message in
            await self?.deliverProgress(message)
        }
        let control = TaskControl(
            onStarted: { [weak self] in await self?.taskStarted(id) },
            onProgress: { fraction, message in forwarder.report(fraction, message: message) },
            onProcessEnded: { [weak self] in await self?.taskProcessEnded(id) })
        controls[id] = control
        let runner = self.runner
        schedule {
            let outcome = await forwarder.forwarding { await runner.run(task, control: control) }
            control.finish()
            await self.taskEnded(id, outcome, measurements: control.measurements)
        }
    }

    func taskStarted(_ id: String) {
        perform(lifecycle.started(id))
    }

    func taskProcessEnded(_ id: String) {
        perform(lifecycle.processEnded(id))
    }

    func taskEnded(_ id: String, _ outcome: TaskOutcome, measurements: TaskMeasurements = TaskMeasurements()) {
        controls[id] = nil
        perform(lifecycle.ended(id, outcome), measurements: (id, measurements))
        workChanged()
    }

    func graceExpired(_ id: String) {
        perform(lifecycle.graceExpired(id))
    }
}
