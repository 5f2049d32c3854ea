import HarnessJobs
import Foundation
import SystemSupport
import LocalAgent
import MesosCodec
import MesosProto

/// Carries out a job's steps against the local agent, waiting on what the agent observes (never
/// on the clock), each wait bounded by the job's deadline and cut short when the executor exits.
struct JobScript {
    let job: Job
    let agent: LocalAgent
    let recorder: RunRecorder
    let executor: ExecutorProcess
    let interruption: Interruption
    let deadline: ContinuousClock.Instant

    /// Runs every step; returns the problems met (a wait that timed out ends the script).
    func run() async -> (problems: [String], shutdownSent: Bool) {
        var shutdownSent = false
        for (index, step) in job.steps.enumerated() {
            if interruption.isInterrupted { return (["interrupted before steps[\(index)]"], shutdownSent) }
            do {
                try await perform(step)
                if case .shutdown = step { shutdownSent = true }
            } catch is CancellationError {
                return (["interrupted during steps[\(index)]"], shutdownSent)
            } catch let error as HarnessError where interruption.isInterrupted {
                return (["interrupted during steps[\(index)] (\(error))"], shutdownSent)
            } catch {
                return (["steps[\(index)]: \(error)"], shutdownSent)
            }
        }
        return ([], shutdownSent)
    }

    func perform(_ step: JobStep) async throws {
        switch step {
        case .launch(let ids):
            for id in ids {
                try await agent.launch(taskInfo(id))
                await recorder.step(.launch, "launch \(id)", tasks: [id])
            }
        case .launchGroup(let ids):
            var group = Mesos_V1_TaskGroupInfo()
            group.tasks = try ids.map(taskInfo)
            try await agent.launchGroup(group)
            await recorder.step(.launch, "launch group \(ids.joined(separator: ", "))", tasks: ids)
        case .wait(let targets):
            let description = targets.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value.rawValue)" }
                .joined(separator: ", ")
            await recorder.step(.wait, "wait until \(description)")
            try await waitFor(description) { state in
                targets.allSatisfy { id, target in Self.reached(state.taskStates[id], target) }
            }
        case .waitForAll:
            await recorder.step(.wait, "wait until every task has ended")
            try await waitForAll()
        case .kill(let id, let grace):
            var policy: Mesos_V1_KillPolicy?
            if let grace {
                policy = Mesos_V1_KillPolicy()
                policy?.gracePeriod.nanoseconds = grace.nanosecondsCount
            }
            await agent.kill(taskID: id, killPolicy: policy)
            await recorder.step(.kill, "kill \(id)" + (grace.map { " (grace \($0))" } ?? ""), tasks: [id])
        case .message(let bytes):
            try await waitForSubscription()
            await agent.sendMessage(Data(bytes))
            await recorder.step(.message, "framework message (\(bytes.count) bytes)")
        case .miniTasks(let batch):
            try await waitForSubscription()
            await agent.sendMessage(Data(ClosureWire.batch(batch)))
            await recorder.miniTasksSent(batch.count)
            await recorder.step(.miniTasks, "\(batch.count) mini-task(s) in one message", tasks: batch.map(\.id))
        case .pause(let length):
            await recorder.step(.wait, "pause \(length)")
            try await Task.sleep(for: length)
        case .restartAgent(let moment):
            let before = await agent.state.subscriptions
            switch moment {
            case .now:
                await recorder.step(.restartAgent, "agent restart")
                try await agent.restart(.immediately)
            case .atNextMessage:
                // The steps go on; the recorder marks the restart when it sees the unanswered MESSAGE.
                try await agent.restart(atNextMessage: .immediately)
                await recorder.step(
                    .restartAgent, "agent set to die at the executor's next MESSAGE, before answering it")
                return
            }
            if job.executor.checkpoint {
                try await waitFor("the executor to re-subscribe") { state in
                    state.subscriptions > before && state.executorStatus == .subscribed
                }
                await recorder.step(.restartAgent, "executor re-subscribed")
            }
        case .shutdown:
            if let exited = executor.termination {
                await recorder.step(.problem, "shutdown skipped: the executor already \(exited)")
                return
            }
            // Recorded before it is sent: the executor may be gone before a busy recorder would note it.
            await recorder.step(.shutdown, "shutdown")
            await agent.shutdown()
        }
    }

    /// A framework messages an executor it knows is running: an agent drops a framework message
    /// for an executor that has not subscribed yet (Mesos does, with a warning), so a `message` or
    /// `mini_tasks` step right after the first launch waits for the subscription.
    func waitForSubscription() async throws {
        try await waitFor("the executor to subscribe") { $0.executorStatus != .registering }
    }

    /// Waits until every launched task has ended (as the agent sees it) and every mini-task sent has
    /// a result in a MESSAGE the agent accepted.
    func waitForAll() async throws {
        let launched = await Set(recorder.log.launchedAt.keys)
        let miniTasks = await recorder.log.miniTasksSent
        let results = MiniTaskResultCounter()
        try await waitFor("every task to end") { state in
            launched.allSatisfy { id in state.taskStates[id].map(Self.isTerminal) ?? false }
                && (miniTasks == 0 || results.count(in: state) >= miniTasks)
        }
    }

    /// Waits for `predicate`; returns early (without error) once the executor has exited, since
    /// nothing more will happen; throws when the job's deadline passes first.
    func waitFor(_ description: String, _ predicate: @escaping @Sendable (LocalAgentState) -> Bool) async throws {
        let remaining = deadline - ContinuousClock.now
        let agent = self.agent
        let exit = executor.exitAlarm
        let interruption = self.interruption
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                do {
                    try await agent.waitUntil(description, timeout: max(remaining, .zero), predicate)
                } catch let error as LocalAgentError where error.isTimedOut {
                    throw HarnessError.stepFailed(
                        "timed out after \(Self.format(self.job.timeout)) (the job's timeout) waiting for \(description)"
                    )
                }
            }
            group.addTask {
                await exit.sleep(max(remaining, .zero) + .seconds(1), cancellable: true)
            }
            group.addTask {
                if await interruption.alarm.sleep(max(remaining, .zero) + .seconds(1), cancellable: true) {
                    throw HarnessError.stepFailed("interrupted while waiting for \(description)")
                }
            }
            defer { group.cancelAll() }
            try await group.next()
        }
        // What the wait saw goes into the log before the step after it (the follower, on a busy
        // machine, may not have recorded it yet): a task's end, say, before the launch it waited for.
        await recorder.catchUp(with: agent)
    }

    func taskInfo(_ id: String) throws -> Mesos_V1_TaskInfo {
        guard let task = job.task(id) else { throw HarnessError.stepFailed("no task \(id)") }
        var info = agent.makeTask(id)
        switch task.kind {
        case .command(let spec):
            info.command.value = spec.value
            info.command.shell = spec.shell
            info.command.arguments = spec.arguments
            if let user = spec.user { info.command.user = user }
            for (name, value) in spec.environment.sorted(by: { $0.key < $1.key }) {
                var variable = Mesos_V1_Environment.Variable()
                variable.name = name
                variable.value = value
                info.command.environment.variables.append(variable)
            }
        case .closure(let function, let payload):
            info.data = Data(ClosureWire.taskData(function: function, payload: payload))
        }
        if let grace = task.killGracePeriod { info.killPolicy.gracePeriod.nanoseconds = grace.nanosecondsCount }
        if let healthCheck = task.healthCheck { info.healthCheck = healthCheck }
        if let check = task.check { info.check = check }
        if let limit = task.maxCompletionTime { info.maxCompletionTime.nanoseconds = limit.nanosecondsCount }
        info.resources = JobScript.scalarResources(task.resources)
        info.limits = task.limits.mapValues { amount in
            var scalar = Mesos_V1_Value.Scalar()
            scalar.value = amount
            return scalar
        }
        return info
    }

    /// Scalar resources as Mesos writes them, in name order.
    static func scalarResources(_ resources: [String: Double]) -> [Mesos_V1_Resource] {
        resources.sorted { $0.key < $1.key }.map { name, value in
            var resource = Mesos_V1_Resource()
            resource.name = name
            resource.type = .scalar
            resource.scalar.value = value
            return resource
        }
    }

    static func reached(_ state: Mesos_V1_TaskState?, _ target: WaitTarget) -> Bool {
        guard let state else { return false }
        switch target {
        case .starting: return true
        case .running: return state == .taskRunning || state == .taskKilling || isTerminal(state)
        case .ended: return isTerminal(state)
        }
    }

    static func isTerminal(_ state: Mesos_V1_TaskState) -> Bool {
        StateName.terminal.contains(StateName.of(state))
    }

    /// Distinct mini-task ids answered in executor MESSAGEs the agent accepted (202) so far: a
    /// result whose MESSAGE a dying agent stored but never answered counts once the executor has
    /// sent it again (at least once, README *Reliability*). The wait's predicate runs on every
    /// change of the agent's state: each request is looked at once, not on every change.
    final class MiniTaskResultCounter: Sendable {
        private let seen = LockedValue<(requests: Int, ids: Set<String>)>((0, []))

        func count(in state: LocalAgentState) -> Int {
            seen.withLock { seen in
                for request in state.requests.dropFirst(seen.requests) where request.status == 202 {
                    guard let call = request.call, call.type == .message else { continue }
                    for result in ClosureWire.results(call.message.data) ?? [] { seen.ids.insert(result.id) }
                }
                seen.requests = max(seen.requests, state.requests.count)
                return seen.ids.count
            }
        }
    }

    static func format(_ duration: Duration) -> String {
        String(format: "%.1fs", RunRecorder.milliseconds(duration) / 1000)
    }
}
