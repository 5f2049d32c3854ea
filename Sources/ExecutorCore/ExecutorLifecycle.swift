import MesosCodec

/// The executor's connection to the agent and its way out, as a pure state machine: subscribing,
/// re-subscribing after a loss (with a random backoff, within the recovery timeout), shutting down,
/// and when to exit with which code.
///
/// It takes what happened, with the time it happened at, and returns what to do. No I/O, no clock,
/// no randomness of its own: `Instant` is the runtime's clock's (a scripted one in tests) and the
/// random source is passed in. The runtime performs the actions.
public struct ExecutorLifecycle<Instant: InstantProtocol & Sendable>: Sendable where Instant.Duration == Duration {
    /// What the agent's environment says about reconnecting and shutting down.
    public struct Settings: Sendable, Equatable {
        /// Whether the framework checkpoints: only then is a lost agent waited for.
        public var checkpoint: Bool
        /// How long to keep trying to re-subscribe after losing the agent.
        public var recoveryTimeout: Duration
        /// Upper bound of the random delay between re-subscription attempts.
        public var subscriptionBackoffMax: Duration
        /// Time between SHUTDOWN and the agent destroying the container.
        public var shutdownGracePeriod: Duration
        /// How long a never-subscribed executor keeps trying; the agent destroys an executor that
        /// has not subscribed within `--executor_registration_timeout` (1 min).
        public var registrationTimeout: Duration
        /// Exit once every launched task has ended and its updates are acknowledged, as Mesos's
        /// command executor does (we stand in for it when the agent runs `mesos-executor`).
        public var exitAfterTasks: Bool

        public init(
            checkpoint: Bool, recoveryTimeout: Duration, subscriptionBackoffMax: Duration,
            shutdownGracePeriod: Duration, registrationTimeout: Duration = .seconds(60), exitAfterTasks: Bool = false
        ) {
            self.checkpoint = checkpoint
            self.recoveryTimeout = recoveryTimeout
            self.subscriptionBackoffMax = subscriptionBackoffMax
            self.shutdownGracePeriod = shutdownGracePeriod
            self.registrationTimeout = registrationTimeout
            self.exitAfterTasks = exitAfterTasks
        }
    }

    /// The tasks and updates, as far as exiting depends on them.
    public struct Work: Sendable, Equatable {
        /// Whether any task was ever launched.
        public var anyLaunched: Bool
        /// Whether any task has not reached a terminal state.
        public var anyActive: Bool
        /// Whether any update waits for the agent's acknowledgement.
        public var anyUnacknowledged: Bool

        public init(anyLaunched: Bool, anyActive: Bool, anyUnacknowledged: Bool) {
            self.anyLaunched = anyLaunched
            self.anyActive = anyActive
            self.anyUnacknowledged = anyUnacknowledged
        }
    }

    public enum Action: Sendable, Equatable {
        /// Say what happened (the runtime chooses the log level and adds its own details).
        case log(Notice)
        /// The event stream is open: the updates it carried count as sent; send the others.
        case resumeUpdates
        /// The connection is gone: updates in flight go back to the queue.
        case holdUpdates
        /// Try SUBSCRIBE again after `after`.
        case resubscribe(after: Duration)
        /// Stop subscribing: the executor is on its way out.
        case stopSubscribing
        /// Ask every active task to stop within `grace`.
        case killAllTasks(grace: Duration, because: String)
        /// Tell the task runner that the executor shuts down (workers can start stopping).
        case notifyRunnerOfShutdown
        /// Call `shutdownGraceOver` at `at`, unless the executor exited first.
        case armShutdownTimer(at: Instant)
        /// SIGKILL what is left of every active task.
        case forceKillActiveTasks
        /// Stop everything and exit the process with `code`.
        case exit(code: Int32)
    }

    /// What is worth a line in the log.
    public enum Notice: Sendable, Equatable {
        /// Subscribed again after a loss.
        case resubscribed
        case lostDuringShutdown(reason: String)
        /// A never-subscribed executor gives up (refused for good, or the registration timeout).
        case cannotSubscribe(reason: String)
        case subscribeFailedRetrying(reason: String)
        case lostWithoutCheckpoint(reason: String)
        case lostResubscribing(reason: String, recoveryTimeout: Duration)
        case recoveryTimedOut(reason: String)
        case resubscriptionRefused(reason: String)
        case shuttingDown(because: String)
        /// The grace period ended with tasks still running or updates unacknowledged.
        case shutdownGraceOverWithWorkLeft
        /// Every task ended and was acknowledged (`exitAfterTasks`).
        case everyTaskEnded
    }

    enum Connection: Sendable, Equatable {
        case connecting(everSubscribed: Bool)
        case subscribed
    }

    public let settings: Settings
    private var connection = Connection.connecting(everSubscribed: false)
    private var firstAttempt: Instant?
    private var disconnectedSince: Instant?
    private var shutdownDeadline: Instant?
    public private(set) var exitCode: Int32 = 0
    /// Whether `exit` was returned; nothing more happens after it.
    public private(set) var hasExited = false

    public init(settings: Settings) {
        self.settings = settings
    }

    // MARK: Queries

    /// Whether the event stream is open (updates and heartbeats can be sent).
    public var isSubscribed: Bool { connection == .subscribed }

    /// Whether a shutdown has begun.
    public var isShuttingDown: Bool { shutdownDeadline != nil }

    // MARK: Inputs

    /// The first SUBSCRIBE is about to be sent: the registration timeout counts from here.
    public mutating func firstSubscribeAttempt(at now: Instant) {
        if firstAttempt == nil { firstAttempt = now }
    }

    /// The SUBSCRIBE call was answered with the event stream.
    public mutating func subscribed() -> [Action] {
        var actions: [Action] = []
        if disconnectedSince != nil { actions.append(.log(.resubscribed)) }
        connection = .subscribed
        disconnectedSince = nil
        actions.append(.resumeUpdates)
        return actions
    }

    /// SUBSCRIBE failed or the event stream ended. `retryable` is whether the same call can succeed
    /// later (the agent was unreachable or recovering); `reason` says what happened.
    public mutating func connectionLost(
        reason: String, retryable: Bool, work: Work, at now: Instant, using random: inout some RandomNumberGenerator
    ) -> [Action] {
        let everSubscribed: Bool
        switch connection {
        case .subscribed: everSubscribed = true
        case .connecting(let ever): everSubscribed = ever
        }
        connection = .connecting(everSubscribed: everSubscribed)
        var actions: [Action] = [.holdUpdates]

        if isShuttingDown {
            // The agent is gone while we shut down: no update can reach it any more.
            actions.append(.log(.lostDuringShutdown(reason: reason)))
            actions += exitIfDone(work)
            actions.append(hasExited ? .stopSubscribing : .resubscribe(after: .milliseconds(100)))
            return actions
        }
        if !everSubscribed {
            if !retryable || (firstAttempt ?? now).duration(to: now) > settings.registrationTimeout {
                actions.append(.log(.cannotSubscribe(reason: reason)))
                exitCode = 1
                actions += shutdown(because: "could not subscribe: \(reason)", work: work, at: now)
                actions.append(.stopSubscribing)
                return actions
            }
            actions.append(.log(.subscribeFailedRetrying(reason: reason)))
            actions.append(.resubscribe(after: .seconds(1)))
            return actions
        }
        if !settings.checkpoint {
            actions.append(.log(.lostWithoutCheckpoint(reason: reason)))
            actions += shutdown(because: "agent connection lost without checkpointing", work: work, at: now)
            actions.append(.stopSubscribing)
            return actions
        }
        guard let since = disconnectedSince else {
            disconnectedSince = now
            actions.append(.log(.lostResubscribing(reason: reason, recoveryTimeout: settings.recoveryTimeout)))
            actions.append(.resubscribe(after: .zero))
            return actions
        }
        let disconnectedFor = since.duration(to: now)
        if disconnectedFor >= settings.recoveryTimeout {
            actions.append(.log(.recoveryTimedOut(reason: reason)))
            actions += shutdown(because: "agent recovery timeout", work: work, at: now)
            actions.append(.stopSubscribing)
            return actions
        }
        if !retryable {
            actions.append(.log(.resubscriptionRefused(reason: reason)))
            actions += shutdown(because: "re-subscription refused: \(reason)", work: work, at: now)
            actions.append(.stopSubscribing)
            return actions
        }
        let bound = settings.subscriptionBackoffMax.nanosecondsCount
        let delay = Duration.nanoseconds(bound > 0 ? Int64.random(in: 0...bound, using: &random) : 0)
        actions.append(.resubscribe(after: min(delay, settings.recoveryTimeout - disconnectedFor)))
        return actions
    }

    /// Begins a graceful shutdown (SHUTDOWN event, SIGTERM, lost agent): every task is killed
    /// within the shutdown grace period, terminal updates are sent and their ACKs awaited (bounded).
    /// A second request changes nothing.
    public mutating func shutdown(because why: String, work: Work, at now: Instant) -> [Action] {
        guard !isShuttingDown, !hasExited else { return [] }
        let grace = settings.shutdownGracePeriod
        let deadline = now.advanced(by: grace)
        shutdownDeadline = deadline
        // Leave time after the kill for the terminal updates to reach the agent before it
        // destroys the container (Mesos's command executor keeps 2 s of a 5 s grace).
        let killGrace = grace > .seconds(3) ? grace - .seconds(2) : grace / 2
        var actions: [Action] = [
            .log(.shuttingDown(because: why)),
            .killAllTasks(grace: killGrace, because: why),
            .notifyRunnerOfShutdown,
            .armShutdownTimer(at: deadline.advanced(by: .milliseconds(-250))),
        ]
        // Asking tasks to stop ends none of them at once, so `work` still holds after the kill.
        actions += exitIfDone(work)
        return actions
    }

    /// A task ended, an update was acknowledged or dropped: exit if that was all there was to wait for.
    public mutating func workChanged(_ work: Work) -> [Action] {
        exitIfDone(work)
    }

    /// The timer of `armShutdownTimer` fired: whatever is left is killed, and the executor exits.
    public mutating func shutdownGraceOver(_ work: Work) -> [Action] {
        guard isShuttingDown, !hasExited else { return [] }
        var actions: [Action] = []
        if !isSettled(work) { actions.append(.log(.shutdownGraceOverWithWorkLeft)) }
        actions.append(.forceKillActiveTasks)
        actions.append(exit(code: exitCode))
        return actions
    }

    // MARK: Exit

    private mutating func exitIfDone(_ work: Work) -> [Action] {
        guard !hasExited else { return [] }
        if settings.exitAfterTasks, !isShuttingDown, work.anyLaunched, !work.anyActive, !work.anyUnacknowledged {
            return [.log(.everyTaskEnded), exit(code: 0)]
        }
        guard isShuttingDown, isSettled(work) else { return [] }
        return [exit(code: exitCode)]
    }

    /// Every task ended and every update that can still reach the agent was acknowledged.
    private func isSettled(_ work: Work) -> Bool {
        // Without a connection no update can be acknowledged: waiting for them would be waiting for nothing.
        !work.anyActive && (!isSubscribed || !work.anyUnacknowledged)
    }

    private mutating func exit(code: Int32) -> Action {
        hasExited = true
        exitCode = code
        return .exit(code: code)
    }
}
