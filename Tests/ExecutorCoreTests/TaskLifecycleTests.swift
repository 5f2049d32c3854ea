import ExecutorCore
import MesosCodec
import MesosProto
import TaskRunning
import XCTest

final class TaskLifecycleTests: XCTestCase {
    private func task(_ id: String, grace: Duration? = nil) -> Mesos_V1_TaskInfo {
        var task = Mesos_V1_TaskInfo()
        task.name = id
        task.taskID.value = id
        task.agentID.value = "agent"
        task.command.value = "true"
        if let grace { task.killPolicy.gracePeriod.nanoseconds = grace.nanosecondsCount }
        return task
    }

    private func states(_ actions: [TaskLifecycle.Action]) -> [String] {
        actions.compactMap {
            if case .report(let report) = $0 { return "\(report.taskID):\(report.state.name)" }
            return nil
        }
    }

    func testStateTableMatchesSpark() {
        let table = Dictionary(uniqueKeysWithValues: SparkTaskState.allCases.map { ($0.rawValue, $0.mesosState) })
        XCTAssertEqual(
            table,
            [
                "LAUNCHING": .taskStarting, "RUNNING": .taskRunning, "FINISHED": .taskFinished,
                "FAILED": .taskFailed, "KILLED": .taskKilled, "LOST": .taskLost,
            ])
    }

    func testHappyPath() {
        var lifecycle = TaskLifecycle()
        let launch = lifecycle.launch(task("a"))
        XCTAssertEqual(states(launch), ["a:TASK_STARTING"])
        XCTAssertTrue(launch.contains(.start(taskID: "a")))
        XCTAssertEqual(states(lifecycle.started("a")), ["a:TASK_RUNNING"])
        XCTAssertEqual(states(lifecycle.started("a")), [], "RUNNING is reported once")
        let end = lifecycle.ended("a", .succeeded(data: [7], message: nil))
        XCTAssertEqual(states(end), ["a:TASK_FINISHED"])
        XCTAssertEqual(end, [.report(.init(taskID: "a", state: .taskFinished, reason: nil, message: nil, data: [7]))])
        XCTAssertEqual(lifecycle.activeTaskIDs, [])
        XCTAssertEqual(lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "late")), [])
    }

    func testFailureCarriesReasonAndMessage() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.started("a")
        let end = lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "Command exited with status 3"))
        XCTAssertEqual(
            end,
            [
                .report(
                    .init(
                        taskID: "a", state: .taskFailed, reason: .commandExecutorFailed,
                        message: "Command exited with status 3", data: nil))
            ])
    }

    func testKillUsesEventGraceThenTaskGraceThenDefault() {
        var lifecycle = TaskLifecycle(defaultKillGrace: .seconds(3))
        _ = lifecycle.launch(task("a", grace: .seconds(10)))
        _ = lifecycle.launch(task("b", grace: .seconds(10)))
        _ = lifecycle.launch(task("c"))
        var policy = Mesos_V1_KillPolicy()
        policy.gracePeriod.nanoseconds = 1_000_000_000
        XCTAssertEqual(lifecycle.kill("a", policy: policy), [.terminate(taskID: "a", grace: .seconds(1))])
        XCTAssertEqual(lifecycle.kill("b", policy: nil), [.terminate(taskID: "b", grace: .seconds(10))])
        XCTAssertEqual(lifecycle.kill("c", policy: nil), [.terminate(taskID: "c", grace: .seconds(3))])
    }

    func testRepeatedKillOnlyShortensGrace() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        XCTAssertEqual(lifecycle.kill("a", policy: nil), [.terminate(taskID: "a", grace: .seconds(3))])
        XCTAssertEqual(lifecycle.kill("a", policy: nil), [])
        var longer = Mesos_V1_KillPolicy()
        longer.gracePeriod.nanoseconds = 9_000_000_000
        XCTAssertEqual(lifecycle.kill("a", policy: longer), [])
        var shorter = Mesos_V1_KillPolicy()
        shorter.gracePeriod.nanoseconds = 0
        XCTAssertEqual(lifecycle.kill("a", policy: shorter), [.terminate(taskID: "a", grace: .zero)])
    }

    func testKillingStateOnlyWithCapability() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        XCTAssertEqual(states(lifecycle.kill("a", policy: nil)), [])
        var capable = TaskLifecycle()
        capable.killingStateAllowed = true
        _ = capable.launch(task("a"))
        XCTAssertEqual(states(capable.kill("a", policy: nil)), ["a:TASK_KILLING"])
    }

    func testKilledEvenIfExitZeroAndEscalationIsNamed() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.started("a")
        _ = lifecycle.kill("a", policy: nil)
        XCTAssertEqual(lifecycle.graceExpired("a"), [.forceKill(taskID: "a")])
        XCTAssertEqual(lifecycle.graceExpired("a"), [])
        let end = lifecycle.ended("a", .succeeded(data: nil, message: "Command exited with status 0"))
        guard case .report(let report) = end.first else { return XCTFail("\(end)") }
        XCTAssertEqual(report.state, .taskKilled)
        XCTAssertEqual(
            report.message,
            "Task killed by the framework (SIGKILL after the 3s grace period); Command exited with status 0")
    }

    func testKillOfUnknownOrFinishedTaskDisturbsNothing() {
        var lifecycle = TaskLifecycle()
        XCTAssertEqual(lifecycle.kill("nope", policy: nil), [])
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.ended("a", .succeeded(data: nil, message: nil))
        XCTAssertEqual(lifecycle.kill("a", policy: nil), [])
        XCTAssertEqual(lifecycle.terminalState(of: "a"), .taskFinished)
    }

    func testGroupMemberFailureKillsTheRest() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launchGroup([task("g1"), task("g2"), task("g3")])
        _ = lifecycle.launch(task("solo"))
        let end = lifecycle.ended("g2", .failed(reason: .commandExecutorFailed, message: "boom"))
        XCTAssertEqual(
            end.filter { if case .terminate = $0 { return true } else { return false } },
            [.terminate(taskID: "g1", grace: .seconds(3)), .terminate(taskID: "g3", grace: .seconds(3))])
        let g1 = lifecycle.ended(
            "g1", .failed(reason: .commandExecutorFailed, message: "Command terminated by signal SIGTERM (15)"))
        guard case .report(let report) = g1.first else { return XCTFail() }
        XCTAssertEqual(report.state, .taskKilled)
        XCTAssertEqual(report.reason, .taskGroupInvalid)
        XCTAssertTrue(report.message!.contains("task 'g2' of its group ended TASK_FAILED"), report.message!)
        XCTAssertTrue(lifecycle.isActive("solo"))
    }

    func testGroupSuccessKillsNothing() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launchGroup([task("g1"), task("g2")])
        XCTAssertEqual(lifecycle.ended("g1", .succeeded(data: nil, message: nil)).count, 1)
        XCTAssertTrue(lifecycle.isActive("g2"))
    }

    func testDuplicateTaskIDIsRefusedWithTaskError() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        let again = lifecycle.launch(task("a"))
        XCTAssertTrue(again.contains(.forceKill(taskID: "a")))
        XCTAssertEqual(states(again), ["a:TASK_ERROR"])
        XCTAssertFalse(again.contains(.start(taskID: "a")))
        XCTAssertEqual(lifecycle.ended("a", .succeeded(data: nil, message: nil)), [], "no second terminal update")
    }

    func testStartFailureAndInvalidTask() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.launch(task("b"))
        XCTAssertEqual(
            states(lifecycle.ended("a", .launchFailed(reason: .containerLaunchFailed, message: "no such file"))),
            ["a:TASK_FAILED"])
        XCTAssertEqual(
            states(lifecycle.ended("b", .error(reason: .taskInvalid, message: "bad data"))), ["b:TASK_ERROR"])
    }

    func testShutdownKillsEveryActiveTask() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.launch(task("b"))
        _ = lifecycle.ended("b", .succeeded(data: nil, message: nil))
        XCTAssertEqual(
            lifecycle.killAll(grace: .seconds(1), because: "SHUTDOWN"), [.terminate(taskID: "a", grace: .seconds(1))])
        guard
            case .report(let report) = lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "x")).first
        else { return XCTFail() }
        XCTAssertEqual(report.state, .taskKilled)
        XCTAssertEqual(report.reason, .executorTerminated)
    }

    func testUnacknowledgedTasksUntilFirstAck() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.launch(task("b"))
        lifecycle.acknowledged("a", state: .taskStarting)
        XCTAssertEqual(lifecycle.unacknowledgedTasks.map(\.taskID.value), ["b"])
    }

    func testATaskIsForgottenOnceItsTerminalUpdateIsAcknowledged() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.launch(task("b"))
        _ = lifecycle.started("a")
        lifecycle.acknowledged("a", state: .taskRunning)
        _ = lifecycle.ended("a", .succeeded(data: nil, message: nil))
        XCTAssertFalse(lifecycle.isActive("a"))
        XCTAssertNotNil(lifecycle.task("a"), "remembered until its terminal update is acknowledged")
        // A relaunch of the id now is still a duplicate.
        XCTAssertEqual(lifecycle.launch(task("a")).count, 1)
        lifecycle.acknowledged("a", state: .taskFinished)
        XCTAssertNil(lifecycle.task("a"))
        XCTAssertEqual(lifecycle.activeTaskIDs, ["b"])
        XCTAssertEqual(lifecycle.unacknowledgedTasks.map(\.taskID.value), ["b"])
        XCTAssertTrue(lifecycle.hasTasks)
        // A KILL for it now changes nothing.
        XCTAssertEqual(lifecycle.kill("a", policy: nil), [])
        // Active tasks stay in launch order whatever the set's order.
        for index in 0..<50 { _ = lifecycle.launch(task("t\(index)")) }
        XCTAssertEqual(lifecycle.activeTaskIDs, ["b"] + (0..<50).map { "t\($0)" })
    }
}
