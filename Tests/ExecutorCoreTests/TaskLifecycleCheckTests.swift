import ExecutorCore
import MesosCodec
import MesosProto
import TaskRunning
import TaskChecks
import Testing

/// What health results, check results and deadlines do to a task, without I/O.
struct TaskLifecycleCheckTests {
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

    @Test func checksStartWhenRunningAndStopWhenAKillStarts() {
        var lifecycle = TaskLifecycle()
        lifecycle.killingStateAllowed = true
        let launch = lifecycle.launch(task("a", health: true, check: true))
        #expect(!launch.contains { if case .startChecks = $0 { true } else { false } })
        let started = lifecycle.started("a")
        guard case .startChecks("a", let checks) = started.last else { Issue.record("\(started)"); return }
        #expect(checks.map(\.name) == ["HTTP check", "TCP health check"])
        #expect(reports(lifecycle.healthResult("a", healthy: true)).map(\.healthy) == [true])
        var status = Mesos_V1_CheckStatusInfo()
        status.type = .http
        status.http.statusCode = 200
        let check = reports(lifecycle.checkResult("a", status: status))
        #expect(check.map(\.reason) == [.taskCheckStatusUpdated])
        #expect(check.first?.healthy == true, "a check update carries the last health")
        let health = reports(lifecycle.healthResult("a", healthy: false))
        #expect(health.first?.checkStatus == status, "a health update carries the last check result")
        let kill = lifecycle.healthCheckFailed("a", because: "its TCP health check failed 3 consecutive times")
        #expect(kill.contains(.stopWatching(taskID: "a")))
        #expect(reports(kill).map(\.state) == [.taskKilling])
        #expect(lifecycle.healthResult("a", healthy: false) == [], "nothing after TASK_KILLING")
        #expect(lifecycle.checkResult("a", status: status) == [])
        let end = reports(lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "terminated")))
        #expect(end.map(\.state) == [.taskKilled])
        #expect(end.first?.healthy == false)
        #expect(end.first?.reason == nil)
        #expect(end.first?.message == "Task killed because its TCP health check failed 3 consecutive times; terminated")
    }

    @Test func deadlineKillsAtOnceWithoutKillingStateAndFails() {
        var lifecycle = TaskLifecycle()
        lifecycle.killingStateAllowed = true
        let launch = lifecycle.launch(task("a", deadline: .seconds(2)))
        #expect(launch.contains(.armDeadline(taskID: "a", after: .seconds(2))))
        _ = lifecycle.started("a")
        let kill = lifecycle.deadlineReached("a")
        #expect(kill == [.stopWatching(taskID: "a"), .terminate(taskID: "a", grace: .zero)])
        #expect(lifecycle.deadlineReached("a") == [])
        let end = lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "Command terminated"))
        let report = reports(end).first
        #expect(report?.state == .taskFailed)
        #expect(report?.reason == .maxCompletionTimeReached)
        #expect(report?.message == "Task killed because it exceeded its max_completion_time of 2s; Command terminated")
    }

    @Test func taskEndingStopsItsWatchersAndUnwatchedTasksHaveNone() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a", deadline: .seconds(60)))
        _ = lifecycle.launch(task("b"))
        _ = lifecycle.started("a")
        _ = lifecycle.started("b")
        #expect(lifecycle.ended("a", .succeeded(data: nil, message: nil)).contains(.stopWatching(taskID: "a")))
        #expect(!lifecycle.ended("b", .succeeded(data: nil, message: nil)).contains(.stopWatching(taskID: "b")))
    }

    /// Once a running task's own process has ended, while its runner cleans up: its checks and
    /// deadline stop, their results are dropped, a kill of any cause is ignored, and its outcome is
    /// the process's (TASK_FINISHED for exit 0, not killed or failed by what came after it).
    @Test func afterTheTasksProcessEndedNothingButItsOutcomeCounts() {
        var lifecycle = TaskLifecycle()
        lifecycle.killingStateAllowed = true
        _ = lifecycle.launch(task("a", health: true, check: true, deadline: .seconds(60)))
        _ = lifecycle.started("a")
        #expect(lifecycle.processEnded("a") == [.stopWatching(taskID: "a")])
        #expect(lifecycle.processEnded("a") == [], "once")
        #expect(lifecycle.healthResult("a", healthy: false) == [])
        #expect(lifecycle.healthCheckFailed("a", because: "its TCP health check failed 1 consecutive times") == [])
        var status = Mesos_V1_CheckStatusInfo()
        status.type = .http
        #expect(lifecycle.checkResult("a", status: status) == [])
        #expect(lifecycle.deadlineReached("a") == [])
        #expect(lifecycle.kill("a", policy: nil) == [])
        #expect(lifecycle.killAll(grace: .seconds(1), because: "SHUTDOWN from the agent") == [])
        #expect(lifecycle.isActive("a"), "active until its outcome is told")
        let end = lifecycle.ended("a", .succeeded(data: nil, message: "Command exited with status 0"))
        #expect(
            end == [
                .report(
                    TaskLifecycle.Report(taskID: "a", state: .taskFinished, message: "Command exited with status 0"))
            ])

        // A task being killed when its process ends stays killed.
        _ = lifecycle.launch(task("b"))
        _ = lifecycle.started("b")
        _ = lifecycle.kill("b", policy: nil)
        #expect(lifecycle.processEnded("b") == [])
        let killed = reports(lifecycle.ended("b", .succeeded(data: nil, message: "Command exited with status 0")))
        #expect(killed.map(\.state) == [.taskKilled])
    }

    @Test func invalidChecksAndDeadlinesAreTaskErrors() {
        var lifecycle = TaskLifecycle()
        var bad = task("a")
        bad.healthCheck.type = .http
        #expect(
            reports(lifecycle.launch(bad)).map(\.message) == [
                "Task uses invalid health check: Expecting 'http' to be set for HTTP health check"
            ])
        var negative = task("b")
        negative.maxCompletionTime.nanoseconds = -1
        let refused = reports(lifecycle.launch(negative))
        #expect(refused.map(\.state) == [.taskError])
        #expect(refused.map(\.reason) == [.taskInvalid])
        #expect(refused.map(\.message) == ["Task's `max_completion_time` must be non-negative"])
        #expect(!lifecycle.hasActiveTasks)
    }
}
