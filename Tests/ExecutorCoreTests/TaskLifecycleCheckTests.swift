import ExecutorCore
import MesosCodec
import MesosProto
import TaskRunning
import TaskChecks
import XCTest

/// What health results, check results and deadlines do to a task, without I/O.
final class TaskLifecycleCheckTests: XCTestCase {
    private func task(_ id: String, health: Bool = false, check: Bool = false, deadline: Duration? = nil)
        -> Mesos_V1_TaskInfo
    {
        var task = Mesos_V1_TaskInfo()
        task.name = id
        task.taskID.value = id
        task.agentID.value = "agent"
        task.command.value = "sleep 60"
        if health {
            task.healthCheck.type = .tcp
            task.healthCheck.tcp.port = 8080
        }
        if check {
            task.check.type = .http
            task.check.http.port = 8080
        }
        if let deadline { task.maxCompletionTime.nanoseconds = deadline.nanosecondsCount }
        return task
    }

    private func reports(_ actions: [TaskLifecycle.Action]) -> [TaskLifecycle.Report] {
        actions.compactMap {
            if case .report(let report) = $0 { return report }
            return nil
        }
    }

    func testChecksStartWhenRunningAndStopWhenAKillStarts() {
        var lifecycle = TaskLifecycle()
        lifecycle.killingStateAllowed = true
        let launch = lifecycle.launch(task("a", health: true, check: true))
        XCTAssertFalse(launch.contains { if case .startChecks = $0 { true } else { false } })
        let started = lifecycle.started("a")
        guard case .startChecks("a", let checks) = started.last else { return XCTFail("\(started)") }
        XCTAssertEqual(checks.map(\.name), ["HTTP check", "TCP health check"])
        XCTAssertEqual(
            reports(lifecycle.healthResult("a", healthy: true)).map(\.healthy), [true])
        var status = Mesos_V1_CheckStatusInfo()
        status.type = .http
        status.http.statusCode = 200
        let check = reports(lifecycle.checkResult("a", status: status))
        XCTAssertEqual(check.map(\.reason), [.taskCheckStatusUpdated])
        XCTAssertEqual(check.first?.healthy, true, "a check update carries the last health")
        let health = reports(lifecycle.healthResult("a", healthy: false))
        XCTAssertEqual(health.first?.checkStatus, status, "a health update carries the last check result")
        let kill = lifecycle.healthCheckFailed("a", because: "its TCP health check failed 3 consecutive times")
        XCTAssertTrue(kill.contains(.stopWatching(taskID: "a")))
        XCTAssertEqual(reports(kill).map(\.state), [.taskKilling])
        XCTAssertEqual(lifecycle.healthResult("a", healthy: false), [], "nothing after TASK_KILLING")
        XCTAssertEqual(lifecycle.checkResult("a", status: status), [])
        let end = reports(lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "terminated")))
        XCTAssertEqual(end.map(\.state), [.taskKilled])
        XCTAssertEqual(end.first?.healthy, false)
        XCTAssertNil(end.first?.reason)
        XCTAssertEqual(
            end.first?.message, "Task killed because its TCP health check failed 3 consecutive times; terminated")
    }

    func testDeadlineKillsAtOnceWithoutKillingStateAndFails() {
        var lifecycle = TaskLifecycle()
        lifecycle.killingStateAllowed = true
        let launch = lifecycle.launch(task("a", deadline: .seconds(2)))
        XCTAssertTrue(launch.contains(.armDeadline(taskID: "a", after: .seconds(2))))
        _ = lifecycle.started("a")
        let kill = lifecycle.deadlineReached("a")
        XCTAssertEqual(kill, [.stopWatching(taskID: "a"), .terminate(taskID: "a", grace: .zero)])
        XCTAssertEqual(lifecycle.deadlineReached("a"), [])
        let end = lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "Command terminated"))
        let report = reports(end).first
        XCTAssertEqual(report?.state, .taskFailed)
        XCTAssertEqual(report?.reason, .maxCompletionTimeReached)
        XCTAssertEqual(
            report?.message, "Task killed because it exceeded its max_completion_time of 2s; Command terminated")
    }

    func testTaskEndingStopsItsWatchersAndUnwatchedTasksHaveNone() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a", deadline: .seconds(60)))
        _ = lifecycle.launch(task("b"))
        _ = lifecycle.started("a")
        _ = lifecycle.started("b")
        XCTAssertTrue(lifecycle.ended("a", .succeeded(data: nil, message: nil)).contains(.stopWatching(taskID: "a")))
        XCTAssertFalse(lifecycle.ended("b", .succeeded(data: nil, message: nil)).contains(.stopWatching(taskID: "b")))
    }

    func testInvalidChecksAndDeadlinesAreTaskErrors() {
        var lifecycle = TaskLifecycle()
        var bad = task("a")
        bad.healthCheck.type = .http
        XCTAssertEqual(
            reports(lifecycle.launch(bad)).map(\.message),
            ["Task uses invalid health check: Expecting 'http' to be set for HTTP health check"])
        var negative = task("b")
        negative.maxCompletionTime.nanoseconds = -1
        let refused = reports(lifecycle.launch(negative))
        XCTAssertEqual(refused.map(\.state), [.taskError])
        XCTAssertEqual(refused.map(\.reason), [.taskInvalid])
        XCTAssertEqual(refused.map(\.message), ["Task's `max_completion_time` must be non-negative"])
        XCTAssertFalse(lifecycle.hasActiveTasks)
    }
}
