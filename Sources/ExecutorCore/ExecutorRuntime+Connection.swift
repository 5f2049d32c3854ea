import AgentConnection
import Logging
import MesosProto
import MesosCodec

extension ExecutorRuntime {
    /// How long a never-subscribed executor keeps trying before giving up; the agent destroys
    /// an executor that has not subscribed within `--executor_registration_timeout` (1 min).
    static let registrationTimeout = Duration.seconds(60)

    enum AfterLoss {
        case retry(after: Duration)
        case stop
    }

    /// Subscribes, reads events until the stream is lost, and re-subscribes as the
    /// configuration allows (checkpointing) or shuts down.
    func connectionLoop() async {
        let start = ContinuousClock.now
        while !Task.isCancelled {
            let (call, carried) = makeSubscribe()
            let failure: AgentError
            do {
                let stream = try await client.subscribe(call)
                streamOpened(carrying: carried)
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
            switch connectionLost(failure, startedAt: start) {
            case .stop:
                return
            case .retry(let delay):
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return
                }
            }
        }
    }

    /// The SUBSCRIBE call with every unacknowledged update and task, and the uuids it carries.
    private func makeSubscribe() -> (Mesos_V1_Executor_Call, Set<[UInt8]>) {
        let updates = ledger.unacknowledged
        let call = makeCall(.subscribe) { call in
            call.subscribe.unacknowledgedUpdates = updates
            call.subscribe.unacknowledgedTasks = lifecycle.unacknowledgedTasks
        }
        return (call, Set(updates.map { [UInt8]($0.status.uuid) }))
    }

    private func streamOpened(carrying uuids: Set<[UInt8]>) {
        if disconnectedSince != nil {
            logger.info("re-subscribed", metadata: ["resent updates": "\(uuids.count)"])
        }
        connection = .subscribed
        disconnectedSince = nil
        ledger.subscribed(carrying: uuids)
        senderWakeupContinuation.yield()
    }

    private func connectionLost(_ error: AgentError, startedAt start: ContinuousClock.Instant) -> AfterLoss {
        let everSubscribed: Bool
        switch connection {
        case .subscribed: everSubscribed = true
        case .connecting(let ever): everSubscribed = ever
        }
        connection = .connecting(everSubscribed: everSubscribed)
        ledger.disconnected()
        let now = ContinuousClock.now

        if shutdownDeadline != nil {
            // The agent is gone while we shut down: no update can reach it any more.
            logger.warning("lost the agent during shutdown", metadata: ["error": "\(error)"])
            finishIfDone(force: false)
            return finished ? .stop : .retry(after: .milliseconds(100))
        }
        if !everSubscribed {
            if !error.isRetryable || now - start > Self.registrationTimeout {
                logger.error("cannot subscribe to the agent", metadata: ["error": "\(error)"])
                exitCode = 1
                shutdown(because: "could not subscribe: \(error)")
                return .stop
            }
            logger.warning("subscribe failed, retrying", metadata: ["error": "\(error)"])
            return .retry(after: .seconds(1))
        }
        if !configuration.checkpoint {
            logger.error(
                "lost the agent and the framework does not checkpoint: killing tasks and exiting",
                metadata: ["error": "\(error)"])
            shutdown(because: "agent connection lost without checkpointing")
            return .stop
        }
        let since = disconnectedSince ?? now
        if disconnectedSince == nil {
            disconnectedSince = now
            logger.warning(
                "lost the agent, re-subscribing",
                metadata: ["error": "\(error)", "recovery timeout": "\(configuration.recoveryTimeout)"])
            return .retry(after: .zero)
        }
        if now - since >= configuration.recoveryTimeout {
            logger.error("agent did not come back within MESOS_RECOVERY_TIMEOUT", metadata: ["error": "\(error)"])
            shutdown(because: "agent recovery timeout")
            return .stop
        }
        if !error.isRetryable {
            logger.error("agent refused re-subscription", metadata: ["error": "\(error)"])
            shutdown(because: "re-subscription refused: \(error)")
            return .stop
        }
        let bound = configuration.subscriptionBackoffMax.nanosecondsCount
        let delay = Duration.nanoseconds(bound > 0 ? Int64.random(in: 0...bound) : 0)
        return .retry(after: min(delay, configuration.recoveryTimeout - (now - since)))
    }
}
