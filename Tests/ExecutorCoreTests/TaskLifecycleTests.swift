import ExecutorCore
import MesosCodec
import MesosProto
import TaskRunning
import Testing

struct TaskLifecycleTests {
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

    @Test func stateTableMatchesSpark() {
        let table = Dictionary(uniqueKeysWithValues: SparkTaskState.allCases.map { ($0.rawValue, $0.mesosState) })
        #expect(
            table == [
                "LAUNCHING": .taskStarting, "RUNNING": .taskRunning, "FINISHED": .taskFinished,
                "FAILED": .taskFailed, "KILLED": .taskKilled, "LOST": .taskLost,
            ])
    }

    @Test func happyPath() {
        var lifecycle = TaskLifecycle()
        let launch = lifecycle.launch(task("a"))
        #expect(states(launch) == ["a:TASK_STARTING"])
        #expect(launch.contains(.start(taskID: "a")))
        #expect(states(lifecycle.started("a")) == ["a:TASK_RUNNING"])
        #expect(states(lifecycle.started("a")) == [], "RUNNING is reported once")
        let end = lifecycle.ended("a", .succeeded(data: [7], message: nil))
        #expect(states(end) == ["a:TASK_FINISHED"])
        #expect(end == [.report(.init(taskID: "a", state: .taskFinished, reason: nil, message: nil, data: [7]))])
        #expect(lifecycle.activeTaskIDs == [])
        #expect(lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "late")) == [])
    }

    @Test func failureCarriesReasonAndMessage() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.started("a")
        let end = lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "Command exited with status 3"))
        #expect(
            end == [
                .report(
                    .init(
                        taskID: "a", state: .taskFailed, reason: .commandExecutorFailed,
                        message: "Command exited with status 3", data: nil))
            ])
    }

    @Test func killUsesEventGraceThenTaskGraceThenDefault() {
        var lifecycle = TaskLifecycle(defaultKillGrace: .seconds(3))
        _ = lifecycle.launch(task("a", grace: .seconds(10)))
        _ = lifecycle.launch(task("b", grace: .seconds(10)))
        _ = lifecycle.launch(task("c"))
        var policy = Mesos_V1_KillPolicy()
        policy.gracePeriod.nanoseconds = 1_000_000_000
        #expect(lifecycle.kill("a", policy: policy) == [.terminate(taskID: "a", grace: .seconds(1))])
        #expect(lifecycle.kill("b", policy: nil) == [.terminate(taskID: "b", grace: .seconds(10))])
        #expect(lifecycle.kill("c", policy: nil) == [.terminate(taskID: "c", grace: .seconds(3))])
    }

    @Test func repeatedKillOnlyShortensGrace() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        #expect(lifecycle.kill("a", policy: nil) == [.terminate(taskID: "a", grace: .seconds(3))])
        #expect(lifecycle.kill("a", policy: nil) == [])
        var longer = Mesos_V1_KillPolicy()
        longer.gracePeriod.nanoseconds = 9_000_000_000
        #expect(lifecycle.kill("a", policy: longer) == [])
        var shorter = Mesos_V1_KillPolicy()
        shorter.gracePeriod.nanoseconds = 0
        #expect(lifecycle.kill("a", policy: shorter) == [.terminate(taskID: "a", grace: .zero)])
    }

    @Test func killingStateOnlyWithCapability() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        #expect(states(lifecycle.kill("a", policy: nil)) == [])
        var capable = TaskLifecycle()
        capable.killingStateAllowed = true
        _ = capable.launch(task("a"))
        #expect(states(capable.kill("a", policy: nil)) == ["a:TASK_KILLING"])
    }

    @Test func killedEvenIfExitZeroAndEscalationIsNamed() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.started("a")
        _ = lifecycle.kill("a", policy: nil)
        #expect(lifecycle.graceExpired("a") == [.forceKill(taskID: "a")])
        #expect(lifecycle.graceExpired("a") == [])
        let end = lifecycle.ended("a", .succeeded(data: nil, message: "Command exited with status 0"))
        guard case .report(let report) = end.first else { Issue.record("\(end)"); return }
        #expect(report.state == .taskKilled)
        #expect(
            report.message
                == "Task killed by the framework (SIGKILL after the 3s grace period); Command exited with status 0")
    }

    @Test func killOfUnknownOrFinishedTaskDisturbsNothing() {
        var lifecycle = TaskLifecycle()
        #expect(lifecycle.kill("nope", policy: nil) == [])
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.ended("a", .succeeded(data: nil, message: nil))
        #expect(lifecycle.kill("a", policy: nil) == [])
        #expect(lifecycle.terminalState(of: "a") == .taskFinished)
    }

    @Test func groupMemberFailureKillsTheRest() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launchGroup([task("g1"), task("g2"), task("g3")])
        _ = lifecycle.launch(task("solo"))
        let end = lifecycle.ended("g2", .failed(reason: .commandExecutorFailed, message: "boom"))
        #expect(
            end.filter { if case .terminate = $0 { return true } else { return false } } == [
                .terminate(taskID: "g1", grace: .seconds(3)), .terminate(taskID: "g3", grace: .seconds(3)),
            ])
        let g1 = lifecycle.ended(
            "g1", .failed(reason: .commandExecutorFailed, message: "Command terminated by signal SIGTERM (15)"))
        guard case .report(let report) = g1.first else { Issue.record(); return }
        #expect(report.state == .taskKilled)
        #expect(report.reason == .taskGroupInvalid)
        #expect(report.message!.contains("task 'g2' of its group ended TASK_FAILED"), "\(report.message!)")
        #expect(lifecycle.isActive("solo"))
    }

    @Test func groupSuccessKillsNothing() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launchGroup([task("g1"), task("g2")])
        #expect(lifecycle.ended("g1", .succeeded(data: nil, message: nil)).count == 1)
        #expect(lifecycle.isActive("g2"))
    }

    @Test func duplicateTaskIDIsRefusedWithTaskError() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        let again = lifecycle.launch(task("a"))
        #expect(again.contains(.forceKill(taskID: "a")))
        #expect(states(again) == ["a:TASK_ERROR"])
        #expect(!again.contains(.start(taskID: "a")))
        #expect(lifecycle.ended("a", .succeeded(data: nil, message: nil)) == [], "no second terminal update")
    }

    /// Standing in for the command executor: the first task runs, every later one fails as Mesos's
    /// command executor fails it, in a group too; a second LAUNCH of the first's id is a duplicate.
    @Test func aStandInForTheCommandExecutorRunsOneTaskOnly() {
        var lifecycle = TaskLifecycle()
        lifecycle.runsOneTaskOnly = true
        let first = lifecycle.launch(task("a"))
        #expect(first.contains(.start(taskID: "a")))
        let second = lifecycle.launch(task("b"))
        #expect(
            second == [
                .report(
                    .init(
                        taskID: "b", state: .taskFailed,
                        message: #"Attempted to run multiple tasks using a "command" executor"#))
            ])
        #expect(lifecycle.task("b") == nil && lifecycle.isActive("a"))
        #expect(states(lifecycle.launchGroup([task("c"), task("d")])) == ["c:TASK_FAILED", "d:TASK_FAILED"])
        #expect(states(lifecycle.launch(task("a"))) == ["a:TASK_ERROR"])
        var fresh = TaskLifecycle()
        fresh.runsOneTaskOnly = true
        #expect(states(fresh.launchGroup([task("e"), task("f")])) == ["e:TASK_STARTING", "f:TASK_FAILED"])
    }

    @Test func startFailureAndInvalidTask() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.launch(task("b"))
        #expect(
            states(lifecycle.ended("a", .launchFailed(reason: .containerLaunchFailed, message: "no such file"))) == [
                "a:TASK_FAILED"
            ])
        #expect(states(lifecycle.ended("b", .error(reason: .taskInvalid, message: "bad data"))) == ["b:TASK_ERROR"])
    }

    @Test func shutdownKillsEveryActiveTask() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.launch(task("b"))
        _ = lifecycle.ended("b", .succeeded(data: nil, message: nil))
        #expect(
            lifecycle.killAll(grace: .seconds(1), because: "SHUTDOWN") == [.terminate(taskID: "a", grace: .seconds(1))])
        guard
            case .report(let report) = lifecycle.ended("a", .failed(reason: .commandExecutorFailed, message: "x")).first
        else { Issue.record(); return }
        #expect(report.state == .taskKilled)
        #expect(report.reason == .executorTerminated)
    }

    @Test func unacknowledgedTasksUntilFirstAck() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.launch(task("b"))
        lifecycle.acknowledged("a", state: .taskStarting)
        #expect(lifecycle.unacknowledgedTasks.map(\.taskID.value) == ["b"])
    }

    @Test func aTaskIsForgottenOnceItsTerminalUpdateIsAcknowledged() {
        var lifecycle = TaskLifecycle()
        _ = lifecycle.launch(task("a"))
        _ = lifecycle.launch(task("b"))
        _ = lifecycle.started("a")
        lifecycle.acknowledged("a", state: .taskRunning)
        _ = lifecycle.ended("a", .succeeded(data: nil, message: nil))
        #expect(!lifecycle.isActive("a"))
        #expect(lifecycle.task("a") != nil, "remembered until its terminal update is acknowledged")
        // A relaunch of the id now is still a duplicate.
        #expect(lifecycle.launch(task("a")).count == 1)
        lifecycle.acknowledged("a", state: .taskFinished)
        #expect(lifecycle.task("a") == nil)
        #expect(lifecycle.activeTaskIDs == ["b"])
        #expect(lifecycle.unacknowledgedTasks.map(\.taskID.value) == ["b"])
        #expect(lifecycle.hasTasks)
        // A KILL for it now changes nothing.
        #expect(lifecycle.kill("a", policy: nil) == [])
        // Active tasks stay in launch order whatever the set's order.
        for index in 0..<50 { _ = lifecycle.launch(task("t\(index)")) }
        #expect(lifecycle.activeTaskIDs == ["b"] + (0..<50).map { "t\($0)" })
    }
}
