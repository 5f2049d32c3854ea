import Isolation
import ProcessSupervision
import TaskRunning
import WorkerWire
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The one owner of the executor's worker processes.
///
/// Fine mode starts a fresh worker per call; coarse mode keeps warm workers, replaces one that
/// dies, and pipelines mini-tasks. ``run()`` hosts every worker process as a child task and
/// returns once ``shutdown()`` was called and every worker has ended; calls made while `run()`
/// is not running wait.
public actor WorkerPool {
    /// One call the pool holds, with whom to tell how it goes. What only a task's call needs lives
    /// in its `TaskReply`: a burst of mini-tasks queues hundreds of thousands of calls, and each
    /// byte here is a byte per queued mini-task (64 bytes a call in the table, 152 when the task's
    /// limits and its run's slot, usage and started flag were held by every call).
    struct Call {
        /// The Mesos task's id or the mini-task's.
        var taskID: String
        var function: String
        /// Moves to the worker with the run.
        var payload: [UInt8]
        var environment: [String: String]
        var reply: Reply

        enum Reply {
            /// A task's call: events for its runner, progress to its control.
            case task(TaskReply)
            /// One of a batch of pipelined calls.
            case pipelined(PipelinedEndings, index: Int)
        }

        init(_ request: CallRequest, reply: Reply) {
            taskID = request.taskID
            function = request.function
            payload = request.payload
            environment = request.environment
            self.reply = reply
        }

        var kind: PoolState.Kind {
            if case .task = reply { return .exclusive }
            return .pipelined
        }
    }

    /// Whom a task's call tells how it goes, and what the pool keeps of it: the pool's own (only
    /// its actor reads or changes it). A class, so that a call's layout is known when the pool is
    /// compiled: `AsyncStream.Continuation` is a resilient type of the standard library, and held
    /// in the call itself it made every copy of a call, every look at its reply and every check of
    /// a table slot a call into the runtime's value witnesses (mini-tasks included).
    final class TaskReply {
        let events: AsyncStream<TaskCallEvent>.Continuation
        let control: TaskControl
        /// Fine mode: the limits of the cgroup of the worker started for the call.
        let limits: CgroupLimits
        /// Set when the run is handed to a worker: its slot and its cgroup's usage then.
        var runningOn: (slot: PoolState.SlotID, usageBefore: CgroupUsage?)?
        /// Whether the runner was told the call is running.
        var started = false

        init(events: AsyncStream<TaskCallEvent>.Continuation, control: TaskControl, limits: CgroupLimits) {
            self.events = events
            self.control = control
            self.limits = limits
        }
    }

    private struct Link {
        let mailbox: WorkerMailbox
        var child: ChildProcess?
        var name: String
        var killRequested = false
        var cgroup: Cgroup?
        /// How deep the worker's pipeline of mini-tasks should be, by its pace.
        var pacer: PipelinePacer
    }

    public nonisolated let configuration: WorkerPoolConfiguration
    private let launcher: WorkerLauncher
    private let forkServer: ForkServer?
    private var state: PoolState
    private var calls = CallTable<Call>()
    private var links: [PoolState.SlotID: Link] = [:]
    private var nextCall: UInt64 = 1
    /// What the mini-tasks in `calls` take (see ``heldBytes(payload:taskID:function:environment:)``),
    /// bounded by the configuration's `maximumHeldMiniTaskBytes`.
    private(set) var heldMiniTaskBytes = 0
    /// Nil until the fork server's start has been decided; then whether it is in use.
    private var forkServerSettled: Bool?
    private var forkServerWaiters: [CheckedContinuation<Bool, Never>] = []
    /// Every worker process's host and the grace timer: child tasks of `run()`'s group.
    private let jobs = ChildTaskQueue()
    /// Coarse mode with isolation: the cgroup the workers share (each has a child of it).
    private var poolCgroup: Cgroup?

    public init(configuration: WorkerPoolConfiguration) {
        self.configuration = configuration
        let mode: PoolState.Mode =
            switch configuration.mode {
            case .fine(let maximum): .fine(maximumWorkers: max(1, maximum))
            case .coarse(let workers): .coarse(workers: max(1, workers))
            }
        if case .fine = mode, configuration.forkServer {
            forkServer = ForkServer(configuration: configuration)
        } else {
            forkServer = nil
        }
        launcher = WorkerLauncher(configuration: configuration, forkServer: forkServer)
        state = PoolState(
            mode: mode, pipelineDepth: Self.initialPipelineDepth(configuration),
            maximumPipelineDepth: configuration.pipelineDepth)
    }

    /// The depth a worker's pipeline starts with, before its pace is known.
    static func initialPipelineDepth(_ configuration: WorkerPoolConfiguration) -> Int {
        min(32, max(1, configuration.pipelineDepth))
    }

    /// Hosts the workers (coarse: starts them now) until ``shutdown()`` and the end of the last worker.
    public func run() async {
        // A worker that dies while we write to it must give us EPIPE, not kill the executor.
        signal(SIGPIPE, SIG_IGN)
        if let isolation = configuration.isolation, case .coarse = configuration.mode {
            do {
                poolCgroup = try isolation.makeCgroup(
                    isolation.uniqueName("pool", "workers"), limits: configuration.poolLimits)
            } catch {
                configuration.notice("coarse workers run without a shared cgroup: \(error)")
            }
        }
        perform(state.start())
        if let forkServer {
            schedule { await self.hostForkServer(forkServer) }
        }
        await withDiscardingTaskGroup { group in
            await jobs.host(in: &group)
            group.cancelAll()
        }
        if let poolCgroup, let isolation = configuration.isolation { await isolation.destroy(poolCgroup) }
    }

    /// Closes every worker's input; workers still alive after the grace period are killed.
    /// Waiting calls end as unavailable; running ones end with their result or their worker.
    public func shutdown() {
        forkServer?.shutDown()
        perform(state.shutdown())
        let grace = configuration.shutdownGracePeriod
        schedule {
            do { try await Task.sleep(for: grace) } catch { return }
            await self.graceOver()
        }
        finishIfDone()
    }

    /// The number of worker processes alive (starting, ready or exiting).
    public var workerCount: Int { state.workerCount }

    /// Each live worker's pipeline: its depth now and the runs it has in flight (for tests).
    var pipelines: [(depth: Int, inFlight: Int)] {
        links.keys.sorted().compactMap { slot in
            state.pipelineDepth(of: slot).map { ($0, state.runCount(on: slot)) }
        }
    }

    /// Whether fresh workers come from a fork server now (fine mode).
    public nonisolated var forkServerReady: Bool { forkServer?.isReady ?? false }

    /// The fork server's pid while it is in use.
    public nonisolated var forkServerProcessID: Int32? { forkServer?.processID }

    /// True while a request for a worker waits for the fork server's answer (for tests).
    nonisolated var forkServerIsAwaitingAnswer: Bool { forkServer?.isAwaitingAnswer ?? false }

    /// Waits until the fork server is up or given up (at once without one); true if it is up.
    public func forkServerStarted() async -> Bool {
        guard forkServer != nil else { return false }
        if let settled = forkServerSettled { return settled }
        return await withCheckedContinuation { forkServerWaiters.append($0) }
    }

    private func settleForkServer(_ ready: Bool) {
        forkServerSettled = ready
        for waiter in forkServerWaiters { waiter.resume(returning: ready) }
        forkServerWaiters = []
    }

    // MARK: Calls (run(_:control:) and runPipelined(_:))

    func submit(
        _ request: CallRequest, reply: AsyncStream<TaskCallEvent>.Continuation, control: TaskControl
    ) -> PoolState.CallID {
        let id = PoolState.CallID(raw: nextCall)
        nextCall += 1
        calls[id] = Call(request, reply: .task(TaskReply(events: reply, control: control, limits: request.limits)))
        perform(state.submit([(id, .exclusive, request.function)]))
        return id
    }

    func submit(_ requests: [CallRequest], endings: PipelinedEndings) {
        var batch: [(id: PoolState.CallID, kind: PoolState.Kind, function: String?)] = []
        batch.reserveCapacity(requests.count)
        let limit = configuration.maximumHeldMiniTaskBytes
        var refused = 0
        for (index, request) in requests.enumerated() {
            let bytes = Self.heldBytes(
                payload: request.payload.count, taskID: request.taskID, function: request.function,
                environment: request.environment)
            guard heldMiniTaskBytes + bytes <= limit else {
                refused += 1
                endings.add(
                    index, taskID: request.taskID, function: request.function,
                    .unavailable(
                        bytes > limit
                            ? "not run: it takes \(Self.size(bytes)) alone, more than spark.mesos.executor.miniTasks.maxHeldSize (\(Self.size(limit)))"
                            : "not run: \(Self.heldLimitReason(held: heldMiniTaskBytes, limit: limit)); send it again once results have come back"
                    ))
                continue
            }
            heldMiniTaskBytes += bytes
            let id = PoolState.CallID(raw: nextCall)
            nextCall += 1
            calls[id] = Call(request, reply: .pipelined(endings, index: index))
            batch.append((id, .pipelined, request.function))
        }
        if refused > 0 {
            configuration.notice(
                "\(refused) of \(requests.count) mini-tasks of a batch not run (LOST): \(Self.heldLimitReason(held: heldMiniTaskBytes, limit: limit))"
            )
        }
        perform(state.submit(batch))
    }

    /// What a mini-task held by the pool is counted as taking: its payload until it goes to a
    /// worker, and about what its bookkeeping costs until its result is back (the pool's call and
    /// table slot, the state machine's record, the payload's allocation and malloc's overhead:
    /// about 0.23 KB measured, 256 counted) with its id, function name and environment.
    static func heldBytes(payload: Int, taskID: String, function: String, environment: [String: String]) -> Int {
        var bytes = payload + 256 + taskID.utf8.count + function.utf8.count
        for (name, value) in environment { bytes += name.utf8.count + value.utf8.count + 32 }
        return bytes
    }

    /// Why mini-tasks are refused while `held` bytes of them are held.
    static func heldLimitReason(held: Int, limit: Int) -> String {
        "the mini-tasks the executor holds (\(size(held))) would go past spark.mesos.executor.miniTasks.maxHeldSize (\(size(limit)))"
    }

    static func size(_ bytes: Int) -> String { bytes >= 1 << 20 ? "\(bytes >> 20) MiB" : "\(bytes) bytes" }

    func stop(_ id: PoolState.CallID, _ request: StopRequest) {
        perform(request == .terminate ? state.cancel(id) : state.kill(id))
    }

    // MARK: Worker events

    private func launched(_ slot: PoolState.SlotID, _ child: ChildProcess, cgroup: Cgroup?, offering: Set<String>?) {
        links[slot]?.child = child
        links[slot]?.cgroup = cgroup
        if links[slot]?.killRequested == true {
            child.signalGroup(SIGKILL)
            return
        }
        // A forked worker is in its cgroup already: its call may be running, as a command is once forked.
        if let offering { perform(state.workerLaunched(slot, offering: offering)) }
    }

    private func ready(_ slot: PoolState.SlotID, _ hello: WorkerHello) {
        links[slot]?.name = hello.workerName
        perform(state.workerReady(slot, hello: hello))
    }

    private func results(_ slot: PoolState.SlotID, _ results: [RunResult]) {
        let now = Self.monotonicNanoseconds()
        let depth = links[slot]?.pacer.arrived(results.count, at: now)
        perform(state.resultsArrived(slot, results, pipelineDepth: depth))
        links[slot]?.pacer.settle(at: now, busy: state.runsPipelinedCalls(slot))
    }

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    private func ended(_ slot: PoolState.SlotID, why: String, memoryLimit: WorkerMemoryLimit? = nil) {
        links[slot] = nil
        perform(state.workerEnded(slot, why: why, memoryLimit: memoryLimit))
        finishIfDone()
    }

    private func graceOver() {
        forkServer?.kill()
        perform(state.killAll())
    }

    private func finishIfDone() {
        if state.isFinished { jobs.finish() }
    }

    private func schedule(_ job: @escaping @Sendable () async -> Void) {
        jobs.add(job)
    }

    // MARK: Actions

    private func perform(_ actions: [PoolState.Action]) {
        guard !actions.isEmpty else { return }
        var outgoing: [PoolState.SlotID: [ToWorker]] = [:]
        // Workers sent mini-tasks: written by this thread (see `WorkerMailbox`).
        var pipelinedTo: Set<PoolState.SlotID> = []
        var now: UInt64?
        for action in actions {
            switch action {
            case .launch(let slot, let callID):
                start(slot, for: callID.flatMap { calls[$0] })
            case .send(let slot, let runID, let callID):
                // In place: the payload goes to the worker and leaves the table.
                guard let (run, task) = calls.modify(callID, { Self.handOver(&$0, as: runID) }) else { continue }
                outgoing[slot, default: []].append(.run(run))
                guard let task else {
                    // The payload leaves the executor's memory with the write to the worker.
                    heldMiniTaskBytes -= run.payload.count
                    pipelinedTo.insert(slot)
                    let stamp = now ?? Self.monotonicNanoseconds()
                    now = stamp
                    links[slot]?.pacer.sent(at: stamp)
                    continue
                }
                Self.started(task)
                links[slot]?.pacer.exclusive()
                // A coarse worker runs many calls: what one call used is the difference. Pipelined
                // calls (mini-tasks) report no usage, so their cgroup is not read (three reads a call).
                var usageBefore: CgroupUsage?
                if !configuration.mode.isFine, let cgroup = links[slot]?.cgroup {
                    usageBefore = cgroup.usage()
                }
                task.runningOn = (slot, usageBefore)
            case .cancel(let slot, let runID):
                outgoing[slot, default: []].append(.cancel(id: runID))
            case .kill(let slot):
                if let child = links[slot]?.child {
                    child.signalGroup(SIGKILL)
                } else {
                    links[slot]?.killRequested = true
                }
            case .close(let slot):
                if let messages = outgoing.removeValue(forKey: slot) {
                    links[slot]?.mailbox.send(messages, writtenHere: pipelinedTo.contains(slot))
                }
                links[slot]?.mailbox.finish()
            case .started(let callID):
                if case .task(let reply) = calls[callID]?.reply { Self.started(reply) }
            case .complete(let callID, let completion):
                guard let call = calls.removeValue(forKey: callID) else { continue }
                switch call.reply {
                case .task(let reply):
                    var usage: CgroupUsage?
                    if let (slot, before) = reply.runningOn, let cgroup = links[slot]?.cgroup {
                        usage = cgroup.usage().since(before)
                    }
                    reply.events.yield(.ended(completion, usage: usage))
                    reply.events.finish()
                case .pipelined(let endings, let index):
                    // Its payload too, if it never went to a worker.
                    heldMiniTaskBytes -= Self.heldBytes(
                        payload: call.payload.count, taskID: call.taskID, function: call.function,
                        environment: call.environment)
                    endings.add(index, taskID: call.taskID, function: call.function, completion)
                }
            }
        }
        for (slot, messages) in outgoing {
            links[slot]?.mailbox.send(messages, writtenHere: pipelinedTo.contains(slot))
        }
    }

    /// The run a worker gets for `call`, whose payload moves into it; and the task's reply if it is
    /// a task's call.
    static func handOver(_ call: inout Call, as runID: UInt64) -> (RunRequest, task: TaskReply?) {
        var payload: [UInt8] = []
        swap(&payload, &call.payload)
        var run = RunRequest(
            id: runID, taskID: call.taskID, function: call.function, payload: payload, environment: call.environment)
        if case .task(let reply) = call.reply { return (run, reply) }
        // A mini-task's result may share a write with those after it; a task's is written at once,
        // so that a crash of the run behind it cannot take a finished task's result with it.
        run.resultMayWait = true
        return (run, nil)
    }

    /// Tells a task's runner, once, that its call is running.
    private static func started(_ reply: TaskReply) {
        guard !reply.started else { return }
        reply.started = true
        reply.events.yield(.started)
    }

    private func progress(_ slot: PoolState.SlotID, _ progress: RunProgress) {
        guard let id = state.call(on: slot, run: progress.id), case .task(let reply) = calls[id]?.reply else {
            return
        }
        reply.control.reportProgress(progress.fraction, message: progress.message)
    }

    private func start(_ slot: PoolState.SlotID, for call: Call?) {
        let mailbox = WorkerMailbox()
        let program = configuration.program.split(separator: "/").last.map(String.init) ?? configuration.program
        let budget = max(.zero, min(configuration.pipelineBudget, .seconds(3600))).components
        let pacer = PipelinePacer(
            budgetNanoseconds: UInt64(budget.seconds) * 1_000_000_000 + UInt64(budget.attoseconds / 1_000_000_000),
            initial: Self.initialPipelineDepth(configuration), minimum: 2, maximum: configuration.pipelineDepth)
        links[slot] = Link(mailbox: mailbox, name: program, pacer: pacer)
        let logDirectory: String
        if let call, !call.taskID.isEmpty, call.kind == .exclusive {
            logDirectory = StandardStreamFiles.taskDirectory(call.taskID)
        } else {
            logDirectory = "workers/\(slot)"
        }
        let environment = call?.environment ?? [:]
        let launcher = self.launcher
        let configuration = self.configuration
        var cgroupPlan: CgroupPlan?
        if let isolation = configuration.isolation {
            if let call, !call.taskID.isEmpty, case .task(let reply) = call.reply, configuration.mode.isFine {
                cgroupPlan = CgroupPlan(isolation: isolation, name: nil, limits: reply.limits, parent: nil)
            } else {
                cgroupPlan = CgroupPlan(
                    isolation: isolation, name: isolation.uniqueName("worker", "\(slot.raw)"), limits: .none,
                    parent: poolCgroup)
            }
        }
        let plan = cgroupPlan
        schedule {
            await self.host(
                slot, mailbox: mailbox, launcher: launcher, configuration: configuration, logDirectory: logDirectory,
                environment: environment, cgroupPlan: plan)
        }
    }

    /// The cgroup a worker is to get: its task's (no name) or a worker's in the pool.
    private struct CgroupPlan: Sendable {
        let isolation: CgroupIsolation
        let name: String?
        let limits: CgroupLimits
        let parent: Cgroup?
    }

    /// The fork server from start to reaping; runs as a child task of `run()`.
    private nonisolated func hostForkServer(_ server: ForkServer) async {
        let notice = configuration.notice
        let process = await BlockingThread.run { server.start() }
        await settleForkServer(process != nil && server.isReady)
        if let process, server.isReady {
            notice("worker fork server ready (pid \(process.pid)); fine-mode workers are forked from it")
        } else if let why = server.unavailableReason {
            notice("no worker fork server: \(why); fine-mode workers are spawned")
        }
        guard let process else { return }
        let termination = await process.wait()
        process.signalGroup(SIGKILL)
        if server.serverEnded(termination) {
            notice("the worker fork server ended (\(termination)); fine-mode workers are spawned from now on")
        }
    }

    /// One worker process from spawn to reaping; runs as a child task of `run()`.
    private nonisolated func host(
        _ slot: PoolState.SlotID, mailbox: WorkerMailbox, launcher: WorkerLauncher,
        configuration: WorkerPoolConfiguration, logDirectory: String, environment: [String: String],
        cgroupPlan: CgroupPlan?
    ) async {
        var cgroup: Cgroup?
        if let plan = cgroupPlan {
            do {
                if let name = plan.name {
                    cgroup = try plan.isolation.makeCgroup(name, limits: plan.limits, in: plan.parent)
                } else {
                    cgroup = try plan.isolation.makeTaskCgroup(limits: plan.limits)
                }
            } catch {
                await ended(slot, why: "worker '\(configuration.program)' could not be started: \(error)")
                return
            }
        }
        let worker: LaunchedWorker
        do {
            worker = try await launcher.launch(logDirectory: logDirectory, environment: environment, cgroup: cgroup)
            // A fine-mode task that may burst above its mem gets Mesos's oom_score_adj, as a command
            // task does, before its closure is sent (and so before anything it starts).
            if let plan = cgroupPlan, plan.name == nil, let score = plan.limits.oomScoreAdjustment() {
                do {
                    try worker.child.setOOMScoreAdjustment(score)
                } catch {
                    worker.child.signalGroup(SIGKILL)
                    _ = await worker.child.wait()
                    throw error
                }
            }
        } catch {
            if let cgroup, let plan = cgroupPlan { await plan.isolation.destroy(cgroup) }
            await ended(slot, why: "worker '\(configuration.program)' could not be started: \(error)")
            return
        }
        await launched(slot, worker.child, cgroup: cgroup, offering: worker.forkedOffering)
        let connection = WorkerConnection(
            worker: worker, helloTimeout: configuration.helloTimeout,
            maximumMessageSize: configuration.maximumMessageSize)
        let end = await connection.serve(
            mailbox: mailbox,
            onHello: { hello in await self.ready(slot, hello) },
            onResults: { results in
                // What the closure wrote before its result is in the files when the result is out.
                worker.logs.flush()
                await self.results(slot, results)
            },
            onProgress: { progress in await self.progress(slot, progress) })
        let termination = await worker.child.wait()
        // Whatever the worker left behind in its process group (and its cgroup) goes with it.
        worker.child.signalGroup(SIGKILL)
        var memoryLimit: WorkerMemoryLimit?
        if let cgroup, let plan = cgroupPlan {
            if !termination.isSuccess, cgroup.oomKills > 0 {
                let limit = cgroup.limits.memoryBytes ?? plan.parent?.limits.memoryBytes ?? 0
                let peak = cgroup.usage().peakMemoryBytes ?? Int64(limit)
                memoryLimit = WorkerMemoryLimit(
                    limitBytes: limit, peakBytes: peak, text: MemoryLimitMessage.text(limit: limit, peak: peak))
            }
            await plan.isolation.destroy(cgroup)
        }
        let who = "worker '\(configuration.program)' (pid \(worker.child.pid), \(logDirectory))"
        let why: String =
            switch end {
            case .protocolError(let problem): "\(who) \(problem); it was stopped (\(termination))"
            case .closedBeforeHello:
                "\(who) closed its pipe before saying hello (\(termination))"
                    + (worker.logs.lastStderrLine().map { "; its stderr ends: \($0)" } ?? "")
            case .closedByUs, .closedByWorker: "\(who) \(termination)"
            }
        await ended(
            slot, why: memoryLimit.map { "\(who) \($0.text) (\(termination))" } ?? why, memoryLimit: memoryLimit)
    }
}

extension WorkerPoolConfiguration.Mode {
    var isFine: Bool { if case .fine = self { true } else { false } }
}
