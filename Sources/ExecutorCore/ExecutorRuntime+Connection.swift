import SystemSupport
import TaskRunning
import AgentConnection
import Logging
public import MesosProto
import MesosCodec

extension ExecutorRuntime {
    /// Subscribes, reads events until the stream is lost, and re-subscribes or stops as
    /// `executorLifecycle` decides.
    func connectionLoop() async {
        executorLifecycle.firstSubscribeAttempt(at: .now)
        while !Task.isCancelled {
            let (call, carried) = makeSubscribe()
            let failure: AgentError
            do {
                let stream = try await client.subscribe(call)
                perform(executorLifecycle.subscribed(), carrying: carried)
                do {
                    for try await event in stream {
                        await handle(event)
                    }
                    failure = AgentError.streamEnded(cleanly: true)
                } catch {
                    failure = error
                }
            } catch {
                failure = error
            }
            if Task.isCancelled { return }
            let actions = executorLifecycle.connectionLost(
                reason: "\(failure)", retryable: failure.isRetryable, work: work, at: .now, using: &random)
            guard let delay = perform(actions) else { return }
            do {
                try await Task.sleep(for: delay)
            } catch {
                return
            }
        }
    }

    /// The SUBSCRIBE call with every unacknowledged update and task, and the uuids it carries.
    private func makeSubscribe() -> (Mesos_V1_Executor_Call, Set<[UInt8]>) {
        let updates = ledger.unacknowledged
        let call = Self.subscribeCall(of: configuration, updates: updates, tasks: lifecycle.unacknowledgedTasks)
        return (call, Set(updates.map { [UInt8]($0.status.uuid) }))
    }

    /// The SUBSCRIBE a runtime made with `configuration` sends first (it has no update or task
    /// yet): the one ``AgentClient/beginSubscribe(_:)`` may send before the runtime is made.
    public static func firstSubscribe(of configuration: ExecutorConfiguration) -> Mesos_V1_Executor_Call {
        subscribeCall(of: configuration, updates: [], tasks: [])
    }

    private static func subscribeCall(
        of configuration: ExecutorConfiguration, updates: [Mesos_V1_Executor_Call.Update],
        tasks: [Mesos_V1_TaskInfo]
    ) -> Mesos_V1_Executor_Call {
        call(.subscribe, of: configuration) { call in
            call.subscribe.unacknowledgedUpdates = updates
            call.subscribe.unacknowledgedTasks = tasks
        }
    }

    /// Performs what `executorLifecycle` decided; returns the delay before the next SUBSCRIBE when
    /// it asks for one. `carried`: the uuids of the updates the SUBSCRIBE just answered carried.
    @discardableResult
    func perform(
        _ actions: [ExecutorLifecycle<ContinuousClock.Instant>.Action], carrying carried: Set<[UInt8]> = []
    ) -> Duration? {
        var resubscribeDelay: Duration?
        for action in actions {
            switch action {
            case .log(let notice):
                log(notice, carried: carried)
            case .resumeUpdates:
                ledger.subscribed(carrying: carried)
                senderWakeupContinuation.yield()
            case .holdUpdates:
                ledger.disconnected()
            case .resubscribe(let delay):
                resubscribeDelay = delay
            case .stopSubscribing:
                resubscribeDelay = nil
            case .killAllTasks(let grace, let why):
                perform(lifecycle.killAll(grace: grace, because: why))
            case .notifyRunnerOfShutdown:
                let hooks = self.hooks
                schedule { await hooks.executorShuttingDown() }
            case .armShutdownTimer(let instant):
                schedule {
                    try? await Task.sleep(until: instant, clock: .continuous)
                    await self.shutdownGraceOver()
                }
            case .forceKillActiveTasks:
                for id in lifecycle.activeTaskIDs { controls[id]?.request(.forceKill) }
            case .exit:
                childTasks.finish()
            }
        }
        return resubscribeDelay
    }

    private func shutdownGraceOver() {
        perform(executorLifecycle.shutdownGraceOver(work))
    }

    private func log(_ notice: ExecutorLifecycle<ContinuousClock.Instant>.Notice, carried: Set<[UInt8]>) {
        switch notice {
        case .resubscribed:
            logger.info("re-subscribed", metadata: ["resent updates": "\(carried.count)"])
        case .lostDuringShutdown(let reason):
            logger.warning("lost the agent during shutdown", metadata: ["error": "\(reason)"])
        case .cannotSubscribe(let reason):
            logger.error("cannot subscribe to the agent", metadata: ["error": "\(reason)"])
        case .subscribeFailedRetrying(let reason):
            logger.warning("subscribe failed, retrying", metadata: ["error": "\(reason)"])
        case .lostWithoutCheckpoint(let reason):
            logger.error(
                "lost the agent and the framework does not checkpoint: killing tasks and exiting",
                metadata: ["error": "\(reason)"])
        case .lostResubscribing(let reason, let recoveryTimeout):
            logger.warning(
                "lost the agent, re-subscribing",
                metadata: ["error": "\(reason)", "recovery timeout": "\(recoveryTimeout)"])
        case .recoveryTimedOut(let reason):
            logger.error("agent did not come back within MESOS_RECOVERY_TIMEOUT", metadata: ["error": "\(reason)"])
        case .resubscriptionRefused(let reason):
            logger.error("agent refused re-subscription", metadata: ["error": "\(reason)"])
        case .shuttingDown(let why):
            logger.info("shutting down", metadata: ["why": "\(why)", "tasks": "\(lifecycle.activeTaskIDs.count)"])
        case .shutdownGraceOverWithWorkLeft:
            logger.warning(
                "shutdown grace period over",
                metadata: ["active tasks": "\(lifecycle.activeTaskIDs)", "unacknowledged updates": "\(ledger.count)"])
        case .everyTaskEnded:
            logger.info("every task ended and was acknowledged; exiting")
        }
    }
}
