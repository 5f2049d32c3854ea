import ExecutorCore
import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import SystemTestLock
import Testing

/// Health checks, checks and max_completion_time against the local agent, for every check type in
/// both encodings. Health is switched by the test (a file, the HTTP answer, a listening socket);
/// intervals are short only to keep the tests quick, never something an outcome depends on.
@Suite(.serialized, .systemTest)
struct CheckEndToEndTests {
    private static func service(_ test: ExecutorUnderTest, _ id: String) -> Mesos_V1_TaskInfo {
        test.task(id, "exec sleep 600", grace: .seconds(30))
    }

    private static func healthReports(_ test: ExecutorUnderTest, _ id: String) async -> [Bool] {
        await test.agent.state.updates(forTask: id).filter { $0.status.reason == .taskHealthCheckStatusUpdated }
            .map(\.status.healthy)
    }

    private static func checkReports(_ test: ExecutorUnderTest, _ id: String) async -> [String] {
        await test.agent.state.updates(forTask: id).filter { $0.status.reason == .taskCheckStatusUpdated }
            .map(\.status.checkStatus.shortText)
    }

    private static func waitForAttempts(_ target: ProbeTarget, moreThan count: Int) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while target.attempts() < count + 3 {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    @Test func unhealthyTaskIsKilledAfterConsecutiveFailures() async throws {
        for encoding in WireEncoding.allCases {
            for kind in ProbeKind.allCases {
                let context = "\(kind) \(encoding)"
                try await ExecutorUnderTest.run(encoding: encoding, capabilities: [.taskKillingState]) { test in
                    let target = try await ProbeTarget.make(kind, sandbox: test.sandbox)
                    try await target.setHealthy(true)
                    var task = Self.service(test, "svc")
                    task.healthCheck = target.healthCheck(failures: 3)
                    try await test.agent.launch(task)
                    try await test.agent.waitUntil("svc healthy") { state in
                        state.updates(forTask: "svc").contains { $0.status.hasHealthy && $0.status.healthy }
                    }
                    try await target.setHealthy(false)
                    try await test.waitForStates(["svc": .taskKilled])
                    let updates = await test.agent.state.updates(forTask: "svc").map(\.status)
                    #expect(
                        updates.map(\.state) == [.taskStarting, .taskRunning] + Array(repeating: .taskRunning, count: 4)
                            + [
                                .taskKilling, .taskKilled,
                            ], "\(context)")
                    let health = await Self.healthReports(test, "svc")
                    #expect(health == [true, false, false, false], "\(context)")
                    #expect(!updates[updates.count - 2].hasHealthy, "TASK_KILLING carries no health")
                    let terminal = try #require(updates.last)
                    #expect(terminal.hasHealthy && !terminal.healthy, "\(context)")
                    #expect(!terminal.hasReason, "Mesos gives a health kill no reason")
                    #expect(
                        terminal.message.contains("its \(kind.rawValue) health check failed 3 consecutive times"),
                        "\(terminal.message)")
                    await target.close()
                    await assertNoViolations(test.agent)
                    await test.agent.shutdown()
                }
            }
        }
    }

    @Test func failuresInsideTheGracePeriodAreIgnored() async throws {
        for encoding in WireEncoding.allCases {
            // A refused TCP connect leaves no trace the test could count, so TCP is covered by the
            // scheduler's unit tests.
            for kind in [ProbeKind.command, .http] {
                let context = "\(kind) \(encoding)"
                try await ExecutorUnderTest.run(encoding: encoding) { test in
                    let target = try await ProbeTarget.make(kind, sandbox: test.sandbox)
                    var task = Self.service(test, "svc")
                    task.healthCheck = target.healthCheck(failures: 1, grace: 3600)
                    try await test.agent.launch(task)
                    try await Self.waitForAttempts(target, moreThan: 0)
                    let early = await Self.healthReports(test, "svc")
                    #expect(early == [], "failures inside the grace period are not reported: \(context)")
                    let stateNow = await test.agent.state.taskStates["svc"]
                    #expect(stateNow == .taskRunning, "\(context)")
                    try await target.setHealthy(true)
                    try await test.agent.waitUntil("svc healthy") { state in
                        state.updates(forTask: "svc").contains { $0.status.hasHealthy }
                    }
                    // The first success ends the grace period: one failure now kills.
                    try await target.setHealthy(false)
                    try await test.waitForStates(["svc": .taskKilled])
                    let health = await Self.healthReports(test, "svc")
                    #expect(health == [true, false], "\(context)")
                    await target.close()
                    await test.agent.shutdown()
                }
            }
        }
    }

    @Test func eachChangedCheckResultIsExactlyOneUpdate() async throws {
        for encoding in WireEncoding.allCases {
            for kind in ProbeKind.checkKinds {
                let context = "\(kind) \(encoding)"
                try await ExecutorUnderTest.run(encoding: encoding) { test in
                    let target = try await ProbeTarget.make(kind, sandbox: test.sandbox)
                    try await target.setHealthy(true)
                    var task = Self.service(test, "svc")
                    task.check = target.check()
                    try await test.agent.launch(task)
                    for (step, healthy) in [true, false, true].enumerated() {
                        if step > 0 { try await target.setHealthy(healthy) }
                        try await test.agent.waitUntil("check update \(step + 1)") { state in
                            state.updates(forTask: "svc").filter { $0.status.reason == .taskCheckStatusUpdated }
                                .count > step
                        }
                        // More attempts with the same result must not produce more updates.
                        if healthy || kind != .tcp {
                            try await Self.waitForAttempts(target, moreThan: target.attempts())
                        }
                    }
                    await test.agent.kill(taskID: "svc")
                    try await test.waitForStates(["svc": .taskKilled])
                    let checks = await Self.checkReports(test, "svc")
                    #expect(checks == [true, false, true].map { target.expectedStatus(healthy: $0) }, "\(context)")
                    let updates = await test.agent.state.updates(forTask: "svc").map(\.status)
                    #expect(updates.allSatisfy { $0.hasCheckStatus && !$0.hasHealthy }, "\(context)")
                    // Statuses built from scratch carry the empty check status, as Mesos's executors send.
                    for status in updates where status.reason != .taskCheckStatusUpdated {
                        #expect(status.checkStatus.shortText == "empty", "\(status.state) \(context)")
                    }
                    await target.close()
                    await assertNoViolations(test.agent)
                    await test.agent.shutdown()
                }
            }
        }
    }

    /// COMMAND checks run in their task's cgroup, so a check still running when the task's own
    /// process ends is killed with what the task left behind. That is the task's end, not a failed
    /// check: as Mesos's executors stop a task's checkers once they reap it, nothing is reported of
    /// it (before, an unhealthy TASK_RUNNING came just before TASK_FINISHED).
    @Test func aCheckCutShortByItsTasksEndReportsNothing() async throws {
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding, cgroups: ExecutorUnderTest.cgroupsUsable) { test in
                // The task ends once both its checks are under way; neither ends on its own.
                var task = test.task("short", "until [ -e probing ] && [ -e checking ]; do sleep 0.05; done")
                task.healthCheck.type = .command
                task.healthCheck.command.value = "touch probing; exec sleep 600"
                task.healthCheck.delaySeconds = 0
                task.healthCheck.gracePeriodSeconds = 0
                task.healthCheck.intervalSeconds = 0.1
                task.healthCheck.timeoutSeconds = 3600
                task.healthCheck.consecutiveFailures = 1
                task.check.type = .command
                task.check.command.command.value = "touch checking; exec sleep 600"
                task.check.delaySeconds = 0
                task.check.intervalSeconds = 0.1
                task.check.timeoutSeconds = 3600
                try await test.agent.launch(task)
                try await test.waitForStates(["short": .taskFinished])
                let updates = await test.agent.state.updates(forTask: "short").map(\.status)
                #expect(updates.map(\.state) == [.taskStarting, .taskRunning, .taskFinished], "\(encoding)")
                #expect(updates.allSatisfy { !$0.hasHealthy }, "\(encoding)")
                #expect(updates.allSatisfy { $0.checkStatus.shortText == "empty" }, "\(encoding)")
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }

    @Test func maxCompletionTimeFailsTheTask() async throws {
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding, capabilities: [.taskKillingState]) { test in
                var late = Self.service(test, "late")
                late.maxCompletionTime.nanoseconds = Duration.milliseconds(300).nanosecondsCount
                var quick = test.task("quick", "echo done")
                quick.maxCompletionTime.nanoseconds = Duration.seconds(3600).nanosecondsCount
                try await test.agent.launch(late)
                try await test.agent.launch(quick)
                try await test.waitForStates(["late": .taskFailed, "quick": .taskFinished])
                let updates = await test.agent.state.updates(forTask: "late").map(\.status)
                #expect(updates.map(\.state) == [.taskStarting, .taskRunning, .taskFailed], "no TASK_KILLING")
                #expect(updates.last?.reason == .maxCompletionTimeReached)
                #expect(
                    updates.last?.message.contains("exceeded its max_completion_time of 300ms") == true,
                    "\(updates.last?.message ?? "")")
                await test.agent.shutdown()
            }
        }
    }

    @Test func invalidChecksAreRefusedAsTheMasterWould() async throws {
        try await ExecutorUnderTest.run(encoding: .json) { test in
            var task = test.task("bad", "exec sleep 600")
            task.healthCheck.type = .http
            task.healthCheck.http.port = 80
            task.healthCheck.http.path = "health"
            try await test.agent.launch(task)
            try await test.waitForStates(["bad": .taskError])
            let last = await test.agent.state.updates(forTask: "bad").last?.status
            #expect(last?.reason == .taskInvalid)
            #expect(
                last?.message
                    == "Task uses invalid health check: The path 'health' of HTTP health check must start with '/'")
            await test.agent.shutdown()
        }
    }
}
