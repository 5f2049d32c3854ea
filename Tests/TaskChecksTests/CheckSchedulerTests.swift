import MesosProto
import TaskChecks
import Testing

/// The scheduling state machine, driven by hand: elapsed time is just a number.
struct CheckSchedulerTests {
    private func health(
        delay: Duration = .seconds(15), interval: Duration = .seconds(10), grace: Duration = .seconds(10),
        failures: UInt32 = 3
    ) -> CheckScheduler {
        CheckScheduler(
            CheckDefinition(
                kind: .health, probe: .tcp(port: 80, ipv6: false), delay: delay, interval: interval,
                timeout: .seconds(20), consecutiveFailures: failures, gracePeriod: grace))
    }

    /// Fires the timer and ends the probe with `result` at `now`; returns the reports (no waits).
    private func attempt(_ machine: inout CheckScheduler, _ result: ProbeResult, at now: Duration)
        -> [CheckScheduler.Action]
    {
        #expect(machine.timerFired(at: now) == [.probe(timeout: machine.definition.timeout)])
        return machine.probeEnded(result, at: now)
    }

    @Test func firstAttemptAfterDelayThenIntervalAfterEachEnd() {
        var machine = health()
        #expect(machine.start() == [.wait(until: .seconds(15))])
        #expect(machine.timerFired(at: .seconds(15)) == [.probe(timeout: .seconds(20))])
        #expect(machine.timerFired(at: .seconds(15)) == [], "one attempt at a time")
        // The attempt took 3 s: the next comes an interval after it ended, not on a fixed rate.
        #expect(
            machine.probeEnded(.tcp(succeeded: true), at: .seconds(18)) == [
                .reportHealth(healthy: true), .wait(until: .seconds(28)),
            ])
        #expect(machine.probeEnded(.tcp(succeeded: true), at: .seconds(19)) == [], "no attempt was running")
    }

    @Test func firstSuccessAndRecoveriesAreReportedEveryFailureIsReported() {
        var machine = health(delay: .zero, interval: .seconds(1), grace: .zero, failures: 5)
        #expect(attempt(&machine, .http(statusCode: 200), at: .zero).first == .reportHealth(healthy: true))
        #expect(attempt(&machine, .http(statusCode: 302), at: .seconds(1)) == [.wait(until: .seconds(2))])
        #expect(attempt(&machine, .http(statusCode: 500), at: .seconds(2)).first == .reportHealth(healthy: false))
        #expect(attempt(&machine, .error("timed out"), at: .seconds(3)).first == .reportHealth(healthy: false))
        #expect(machine.consecutiveFailures == 2)
        #expect(attempt(&machine, .http(statusCode: 204), at: .seconds(4)).first == .reportHealth(healthy: true))
        #expect(machine.consecutiveFailures == 0)
        #expect(attempt(&machine, .http(statusCode: 200), at: .seconds(5)) == [.wait(until: .seconds(6))])
    }

    @Test func killAfterConsecutiveFailuresThenNothingMore() {
        var machine = health(delay: .zero, interval: .seconds(1), grace: .zero, failures: 3)
        _ = attempt(&machine, .command(exitCode: 1), at: .zero)
        _ = attempt(&machine, .command(exitCode: 1), at: .seconds(1))
        #expect(
            attempt(&machine, .command(exitCode: 2), at: .seconds(2)) == [
                .reportHealth(healthy: false),
                .killTask(message: "its TCP health check failed 3 consecutive times (last: exit code 2)"),
            ])
        #expect(machine.isStopped)
        #expect(machine.timerFired(at: .seconds(3)) == [])
    }

    @Test func zeroConsecutiveFailuresKillsOnTheFirstCountedFailure() {
        var machine = health(delay: .zero, grace: .zero, failures: 0)
        #expect(
            attempt(&machine, .tcp(succeeded: false), at: .zero) == [
                .reportHealth(healthy: false),
                .killTask(message: "its TCP health check failed once (last: connection failed)"),
            ])
    }

    @Test func failuresInsideGracePeriodAreIgnoredUntilFirstSuccess() {
        var machine = health(delay: .seconds(1), interval: .seconds(2), grace: .seconds(5), failures: 1)
        #expect(attempt(&machine, .tcp(succeeded: false), at: .seconds(1)) == [.wait(until: .seconds(3))])
        #expect(attempt(&machine, .tcp(succeeded: false), at: .seconds(5)) == [.wait(until: .seconds(7))])
        #expect(machine.consecutiveFailures == 0, "failures within the grace period are not counted")
        #expect(attempt(&machine, .tcp(succeeded: false), at: .seconds(7)).last?.isKill == true)
    }

    @Test func gracePeriodEndsAtFirstSuccess() {
        var machine = health(delay: .zero, interval: .seconds(1), grace: .seconds(100), failures: 1)
        _ = attempt(&machine, .tcp(succeeded: true), at: .zero)
        #expect(attempt(&machine, .tcp(succeeded: false), at: .seconds(1)).last?.isKill == true)
    }

    @Test func checkReportsOnlyChangesAndErrorsAsEmpty() {
        var machine = CheckScheduler(
            CheckDefinition(
                kind: .check, probe: .http(scheme: "http", port: 80, path: "", ipv6: false),
                delay: .zero, interval: .seconds(1), timeout: nil))
        #expect(machine.start() == [.wait(until: .zero)])
        #expect(
            attempt(&machine, .error("timed out"), at: .zero) == [.wait(until: .seconds(1))],
            "the first status is empty already: nothing changed")
        var seen: [Mesos_V1_CheckStatusInfo] = []
        for (index, result) in [
            ProbeResult.http(statusCode: 200), .http(statusCode: 200), .http(statusCode: 202),
            .error("timed out"), .http(statusCode: 202),
        ].enumerated() {
            for case .reportCheck(let status) in attempt(&machine, result, at: .seconds(Int64(index + 1))) {
                seen.append(status)
            }
        }
        #expect(seen.map { $0.http.hasStatusCode ? Int($0.http.statusCode) : nil } == [200, 202, nil, 202])
        #expect(seen.allSatisfy { $0.type == .http && $0.hasHTTP })
    }

    @Test func checksNeverKill() {
        var machine = CheckScheduler(
            CheckDefinition(kind: .check, probe: .command(.init()), delay: .zero, interval: .seconds(1), timeout: nil))
        for second in 0..<10 {
            let actions = attempt(&machine, .command(exitCode: Int32(second % 2)), at: .seconds(second))
            #expect(!actions.contains { $0.isKill })
        }
    }

    @Test func stopDropsResultsAndTimers() {
        var machine = health(delay: .zero, grace: .zero)
        #expect(machine.timerFired(at: .zero) == [.probe(timeout: .seconds(20))])
        machine.stop()
        #expect(machine.probeEnded(.tcp(succeeded: false), at: .zero) == [])
        #expect(machine.timerFired(at: .seconds(1)) == [])
        #expect(machine.start() == [])
    }
}

extension CheckScheduler.Action {
    var isKill: Bool {
        if case .killTask = self { return true }
        return false
    }
}
