import ExecutorCore
import MesosCodec
import SeededRandom
import Testing

/// A clock reading in whole milliseconds, moved only by the test.
struct ScriptedInstant: InstantProtocol {
    var milliseconds: Int64

    func advanced(by duration: Duration) -> Self {
        Self(milliseconds: milliseconds + duration.nanosecondsCount / 1_000_000)
    }

    func duration(to other: Self) -> Duration { .milliseconds(other.milliseconds - milliseconds) }

    static func < (lhs: Self, rhs: Self) -> Bool { lhs.milliseconds < rhs.milliseconds }
}

typealias Lifecycle = ExecutorLifecycle<ScriptedInstant>

private func at(_ milliseconds: Int64) -> ScriptedInstant { ScriptedInstant(milliseconds: milliseconds) }

private let idle = Lifecycle.Work(anyLaunched: false, anyActive: false, anyUnacknowledged: false)
private let running = Lifecycle.Work(anyLaunched: true, anyActive: true, anyUnacknowledged: false)
private let endedUnacknowledged = Lifecycle.Work(anyLaunched: true, anyActive: false, anyUnacknowledged: true)
private let endedAcknowledged = Lifecycle.Work(anyLaunched: true, anyActive: false, anyUnacknowledged: false)

private func settings(
    checkpoint: Bool = true, recovery: Duration = .seconds(60), backoffMax: Duration = .seconds(2),
    grace: Duration = .seconds(5), exitAfterTasks: Bool = false
) -> Lifecycle.Settings {
    .init(
        checkpoint: checkpoint, recoveryTimeout: recovery, subscriptionBackoffMax: backoffMax,
        shutdownGracePeriod: grace, exitAfterTasks: exitAfterTasks)
}

/// Feeds the lifecycle its events with a scripted clock and a seeded random source.
private struct Script {
    var lifecycle: Lifecycle
    var random = SeededRandom(seed: 12)

    init(_ settings: Lifecycle.Settings, startingAt start: Int64 = 0) {
        lifecycle = Lifecycle(settings: settings)
        lifecycle.firstSubscribeAttempt(at: at(start))
    }

    mutating func lost(
        at now: Int64, retryable: Bool = true, work: Lifecycle.Work = idle, reason: String = "gone"
    ) -> [Lifecycle.Action] {
        lifecycle.connectionLost(reason: reason, retryable: retryable, work: work, at: at(now), using: &random)
    }

    /// The delay of the `resubscribe` action, or nil when the actions stop subscribing.
    static func delay(_ actions: [Lifecycle.Action]) -> Duration? {
        for action in actions {
            if case .resubscribe(let delay) = action { return delay }
        }
        return nil
    }
}

private func shutdownActions(_ why: String, startedAt now: Int64, killGrace: Duration, grace: Duration)
    -> [Lifecycle.Action]
{
    [
        .log(.shuttingDown(because: why)), .killAllTasks(grace: killGrace, because: why), .notifyRunnerOfShutdown,
        .armShutdownTimer(at: at(now).advanced(by: grace - .milliseconds(250))),
    ]
}

@Suite struct ExecutorLifecycleSubscribingTests {
    @Test func aNeverSubscribedExecutorRetriesEverySecondUntilTheRegistrationTimeout() {
        var script = Script(settings(), startingAt: 1_000)
        for second in 1...60 {
            let actions = script.lost(at: 1_000 + Int64(second) * 1_000)
            #expect(
                actions == [
                    .holdUpdates, .log(.subscribeFailedRetrying(reason: "gone")), .resubscribe(after: .seconds(1)),
                ])
        }
        let actions = script.lost(at: 61_001)
        let why = "could not subscribe: gone"
        #expect(
            actions
                == [.holdUpdates, .log(.cannotSubscribe(reason: "gone"))]
                + shutdownActions(why, startedAt: 61_001, killGrace: .seconds(3), grace: .seconds(5))
                + [.exit(code: 1), .stopSubscribing])
        #expect(script.lifecycle.exitCode == 1)
        #expect(script.lifecycle.hasExited)
    }

    @Test func aSubscribeRefusedForGoodEndsTheExecutorAtOnceWithExitCode1() {
        var script = Script(settings(checkpoint: false))
        let actions = script.lost(at: 10, retryable: false, reason: "401")
        #expect(actions.contains(.log(.cannotSubscribe(reason: "401"))))
        #expect(actions.suffix(2) == [.exit(code: 1), .stopSubscribing])
    }

    @Test func aRefusedSubscribeWithTasksRunningWaitsForThemBeforeExiting() {
        var script = Script(settings())
        let actions = script.lost(at: 10, retryable: false, work: running)
        #expect(actions.last == .stopSubscribing)
        #expect(!actions.contains(.exit(code: 1)))
        #expect(script.lifecycle.exitCode == 1)
        #expect(script.lifecycle.workChanged(endedAcknowledged) == [.exit(code: 1)])
    }

    @Test func subscribingResumesUpdatesAndSaysSoOnlyAfterALoss() {
        var script = Script(settings())
        #expect(script.lifecycle.subscribed() == [.resumeUpdates])
        #expect(script.lifecycle.isSubscribed)
        _ = script.lost(at: 5_000)
        #expect(!script.lifecycle.isSubscribed)
        #expect(script.lifecycle.subscribed() == [.log(.resubscribed), .resumeUpdates])
    }
}

@Suite struct ExecutorLifecycleRecoveryTests {
    @Test func withoutCheckpointingALostAgentShutsTheExecutorDown() {
        var script = Script(settings(checkpoint: false))
        _ = script.lifecycle.subscribed()
        let actions = script.lost(at: 7_000, work: running)
        let why = "agent connection lost without checkpointing"
        #expect(
            actions
                == [.holdUpdates, .log(.lostWithoutCheckpoint(reason: "gone"))]
                + shutdownActions(why, startedAt: 7_000, killGrace: .seconds(3), grace: .seconds(5))
                + [.stopSubscribing])
        // Disconnected: unacknowledged updates cannot be acknowledged, so they hold nothing up.
        #expect(script.lifecycle.workChanged(endedUnacknowledged) == [.exit(code: 0)])
    }

    @Test func withCheckpointingTheFirstRetryIsImmediateAndLaterOnesRandomWithinTheBound() throws {
        var script = Script(settings(recovery: .seconds(60), backoffMax: .seconds(2)))
        _ = script.lifecycle.subscribed()
        #expect(
            script.lost(at: 100_000)
                == [
                    .holdUpdates, .log(.lostResubscribing(reason: "gone", recoveryTimeout: .seconds(60))),
                    .resubscribe(after: .zero),
                ])
        var delays: Set<Duration> = []
        var now: Int64 = 100_000
        for _ in 0..<20 {
            let actions = script.lost(at: now)
            #expect(actions.count == 2)
            let delay = try #require(Script.delay(actions))
            #expect(delay >= .zero && delay <= .seconds(2))
            delays.insert(delay)
            now += 1_000
        }
        #expect(delays.count > 1, "the backoff is random, not fixed")
    }

    @Test func theSameSeedGivesTheSameBackoff() {
        func delays() -> [Duration?] {
            var script = Script(settings())
            _ = script.lifecycle.subscribed()
            return (0..<10).map { Script.delay(script.lost(at: Int64($0) * 500)) }
        }
        #expect(delays() == delays())
    }

    @Test func theBackoffNeverReachesPastTheRecoveryTimeout() throws {
        var script = Script(settings(recovery: .seconds(10), backoffMax: .seconds(3_600)))
        _ = script.lifecycle.subscribed()
        _ = script.lost(at: 0)
        for now in stride(from: Int64(1_000), to: 10_000, by: 1_500) {
            let delay = try #require(Script.delay(script.lost(at: now)))
            #expect(delay <= .milliseconds(10_000 - now))
        }
    }

    @Test func aZeroBackoffBoundRetriesAtOnce() {
        var script = Script(settings(backoffMax: .zero))
        _ = script.lifecycle.subscribed()
        _ = script.lost(at: 0)
        #expect(Script.delay(script.lost(at: 1)) == .zero)
    }

    @Test func theRecoveryTimeoutEndsTheWaitAndShutsDown() {
        var script = Script(settings(recovery: .seconds(15)))
        _ = script.lifecycle.subscribed()
        _ = script.lost(at: 1_000)
        #expect(Script.delay(script.lost(at: 15_999)) != nil)
        let actions = script.lost(at: 16_000)
        #expect(
            actions
                == [.holdUpdates, .log(.recoveryTimedOut(reason: "gone"))]
                + shutdownActions(
                    "agent recovery timeout", startedAt: 16_000, killGrace: .seconds(3), grace: .seconds(5))
                + [.exit(code: 0), .stopSubscribing])
    }

    @Test func aReSubscriptionRefusedForGoodShutsDown() {
        var script = Script(settings())
        _ = script.lifecycle.subscribed()
        _ = script.lost(at: 0)
        let actions = script.lost(at: 500, retryable: false, work: running, reason: "400")
        #expect(actions.contains(.log(.resubscriptionRefused(reason: "400"))))
        #expect(actions.contains(.killAllTasks(grace: .seconds(3), because: "re-subscription refused: 400")))
        #expect(actions.last == .stopSubscribing)
        #expect(script.lifecycle.exitCode == 0)
    }

    @Test func theRecoveryWindowStartsAgainAfterEachSuccessfulSubscription() {
        var script = Script(settings(recovery: .seconds(10)))
        _ = script.lifecycle.subscribed()
        _ = script.lost(at: 0)
        _ = script.lost(at: 9_000)
        _ = script.lifecycle.subscribed()
        #expect(Script.delay(script.lost(at: 20_000)) == .zero)
        #expect(Script.delay(script.lost(at: 29_999)) != nil)
    }
}

@Suite struct ExecutorLifecycleShutdownTests {
    @Test func theKillGraceLeavesTimeForTheTerminalUpdates() {
        for (grace, killGrace) in [(Duration.seconds(5), Duration.seconds(3)), (.seconds(3), .milliseconds(1_500))] {
            var lifecycle = Lifecycle(settings: settings(grace: grace))
            let actions = lifecycle.shutdown(because: "SHUTDOWN", work: running, at: at(100))
            #expect(actions == shutdownActions("SHUTDOWN", startedAt: 100, killGrace: killGrace, grace: grace))
            #expect(lifecycle.isShuttingDown)
        }
    }

    @Test func aSecondShutdownChangesNothing() {
        var lifecycle = Lifecycle(settings: settings())
        _ = lifecycle.shutdown(because: "SIGTERM", work: running, at: at(0))
        #expect(lifecycle.shutdown(because: "SHUTDOWN", work: running, at: at(10)) == [])
    }

    @Test func aShutdownWithNothingRunningExitsAtOnce() {
        var lifecycle = Lifecycle(settings: settings())
        _ = lifecycle.subscribed()
        let actions = lifecycle.shutdown(because: "SHUTDOWN", work: idle, at: at(0))
        #expect(actions.last == .exit(code: 0))
    }

    @Test func whileSubscribedTheExitWaitsForTheAcknowledgements() {
        var lifecycle = Lifecycle(settings: settings())
        _ = lifecycle.subscribed()
        _ = lifecycle.shutdown(because: "SHUTDOWN", work: running, at: at(0))
        #expect(lifecycle.workChanged(running) == [])
        #expect(lifecycle.workChanged(endedUnacknowledged) == [])
        #expect(lifecycle.workChanged(endedAcknowledged) == [.exit(code: 0)])
        #expect(lifecycle.workChanged(endedAcknowledged) == [])
        #expect(lifecycle.shutdownGraceOver(endedAcknowledged) == [])
    }

    @Test func theGracePeriodEndKillsWhatIsLeftAndExits() {
        var lifecycle = Lifecycle(settings: settings())
        _ = lifecycle.subscribed()
        _ = lifecycle.shutdown(because: "SHUTDOWN", work: running, at: at(0))
        #expect(
            lifecycle.shutdownGraceOver(running)
                == [.log(.shutdownGraceOverWithWorkLeft), .forceKillActiveTasks, .exit(code: 0)])
    }

    @Test func theGracePeriodEndWithEverythingSettledSaysNothing() {
        var lifecycle = Lifecycle(settings: settings())
        _ = lifecycle.shutdown(because: "SHUTDOWN", work: running, at: at(0))
        #expect(lifecycle.shutdownGraceOver(endedUnacknowledged) == [.forceKillActiveTasks, .exit(code: 0)])
    }

    @Test func losingTheAgentDuringShutdownRetriesUntilTheTasksEnd() {
        var script = Script(settings())
        _ = script.lifecycle.subscribed()
        _ = script.lifecycle.shutdown(because: "SHUTDOWN", work: running, at: at(0))
        #expect(
            script.lost(at: 10, work: running)
                == [.holdUpdates, .log(.lostDuringShutdown(reason: "gone")), .resubscribe(after: .milliseconds(100))])
        #expect(
            script.lost(at: 200, work: endedUnacknowledged)
                == [.holdUpdates, .log(.lostDuringShutdown(reason: "gone")), .exit(code: 0), .stopSubscribing])
    }

    @Test func aFailedFirstSubscribeDuringShutdownKeepsExitCode0() {
        var script = Script(settings())
        _ = script.lifecycle.shutdown(because: "SIGTERM", work: running, at: at(0))
        _ = script.lost(at: 10, retryable: false, work: running)
        #expect(script.lifecycle.workChanged(endedAcknowledged) == [.exit(code: 0)])
    }
}

@Suite struct ExecutorLifecycleExitAfterTasksTests {
    @Test func theCommandExecutorStandInExitsOnceItsTasksEndedAndWereAcknowledged() {
        var lifecycle = Lifecycle(settings: settings(exitAfterTasks: true))
        _ = lifecycle.subscribed()
        #expect(lifecycle.workChanged(idle) == [], "no task was launched yet")
        #expect(lifecycle.workChanged(running) == [])
        #expect(lifecycle.workChanged(endedUnacknowledged) == [])
        #expect(lifecycle.workChanged(endedAcknowledged) == [.log(.everyTaskEnded), .exit(code: 0)])
        #expect(lifecycle.hasExited)
        #expect(lifecycle.shutdown(because: "SIGTERM", work: idle, at: at(0)) == [])
    }

    @Test func otherwiseTheExecutorStaysWhenItsTasksEnd() {
        var lifecycle = Lifecycle(settings: settings())
        _ = lifecycle.subscribed()
        #expect(lifecycle.workChanged(endedAcknowledged) == [])
        #expect(!lifecycle.hasExited)
    }
}
