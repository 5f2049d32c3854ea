import MesosProto
import SystemSupport
import TaskChecks
import Testing

/// A clock whose sleeps return at once, having moved time to their deadline: the driver runs
/// through minutes of schedule in microseconds and never depends on the machine's speed.
final class ScriptedClock: Clock, Sendable {
    struct Instant: InstantProtocol {
        var offset: Duration
        func advanced(by duration: Duration) -> Instant { Instant(offset: offset + duration) }
        func duration(to other: Instant) -> Duration { other.offset - offset }
        static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.offset < rhs.offset }
    }

    private let current = LockedValue(Instant(offset: .zero))
    var now: Instant { current.withLock { $0 } }
    var minimumResolution: Duration { .nanoseconds(1) }

    func sleep(until deadline: Instant, tolerance: Duration?) async throws {
        try Task.checkCancellation()
        current.withLock { $0 = max($0, deadline) }
    }

    func advance(by duration: Duration) { current.withLock { $0 = $0.advanced(by: duration) } }
}

/// Returns scripted results; each attempt takes `attemptTakes` of scripted time.
final class ScriptedProber: Prober {
    let clock: ScriptedClock
    let results: LockedValue<[ProbeResult]>
    let attempts = LockedValue<[Duration]>([])
    let attemptTakes: Duration

    init(clock: ScriptedClock, _ results: [ProbeResult], attemptTakes: Duration = .seconds(1)) {
        self.clock = clock
        self.results = LockedValue(results)
        self.attemptTakes = attemptTakes
    }

    func probe(_ probe: CheckDefinition.Probe, timeout: Duration?) async -> ProbeResult {
        attempts.withLock { $0.append(clock.now.offset) }
        clock.advance(by: attemptTakes)
        return results.withLock { $0.isEmpty ? .error("script over") : $0.removeFirst() }
    }
}

struct CheckerTests {
    @Test func healthCheckScheduleAndKill() async {
        let clock = ScriptedClock()
        let prober = ScriptedProber(
            clock: clock,
            [
                .http(statusCode: 500), .http(statusCode: 200), .http(statusCode: 200), .http(statusCode: 503),
                .http(statusCode: 503), .http(statusCode: 503), .http(statusCode: 200),
            ])
        let definition = CheckDefinition(
            kind: .health, probe: .http(scheme: "http", port: 1, path: "/", ipv6: false), delay: .seconds(5),
            interval: .seconds(10), timeout: .seconds(3), consecutiveFailures: 3, gracePeriod: .seconds(5))
        let performed = LockedValue<[CheckScheduler.Action]>([])
        await Checker.run(definition, prober: prober, clock: clock) { action in
            performed.withLock { $0.append(action) }
            return true
        }
        // Each attempt takes 1 s and the next comes an interval after it ended. The first failure
        // ended at 6 s, past the 5 s grace period, so it counts.
        #expect(prober.attempts.withLock { $0 } == [5, 16, 27, 38, 49, 60].map { .seconds($0) })
        #expect(
            performed.withLock { $0 } == [
                .reportHealth(healthy: false), .reportHealth(healthy: true), .reportHealth(healthy: false),
                .reportHealth(healthy: false), .reportHealth(healthy: false),
                .killTask(message: "its HTTP health check failed 3 consecutive times (last: HTTP status 503)"),
            ])
    }

    @Test func stopsWhenTheTaskNoLongerWantsResults() async {
        let clock = ScriptedClock()
        let prober = ScriptedProber(clock: clock, (0..<10).map { .command(exitCode: Int32($0)) })
        let definition = CheckDefinition(
            kind: .check, probe: .command(.init()), delay: .zero, interval: .seconds(1), timeout: nil)
        let performed = LockedValue(0)
        await Checker.run(definition, prober: prober, clock: clock) { _ in
            performed.withLock { $0 += 1 }
            return performed.withLock { $0 } < 3
        }
        #expect(performed.withLock { $0 } == 3)
        #expect(prober.attempts.withLock { $0.count } == 3)
    }
}
