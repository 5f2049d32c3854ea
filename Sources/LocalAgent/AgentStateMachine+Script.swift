import Foundation
import MesosProto

/// What a test (or the harness) makes the agent do.
extension AgentStateMachine {
    func knowsTask(_ taskID: String) -> Bool { tasks[taskID] != nil }

    /// A new task or task group from the "master": delivered at once to a subscribed executor,
    /// queued otherwise (as the agent does until SUBSCRIBE).
    mutating func launch(_ launch: QueuedLaunch) -> [AgentAction] {
        for task in launch.tasks {
            tasks[task.taskID.value] = TaskRecord(info: task)
            taskOrder.append(task.taskID.value)
            setTaskState(task.taskID.value, .taskStaging)
        }
        var actions: [AgentAction] = []
        if observed.executorStatus == .subscribed {
            deliver(launch, &actions)
        } else {
            queue.append(launch)
        }
        return actions
    }

    /// A scheduler's kill: KILL for a delivered task; for a queued one the agent answers
    /// TASK_KILLED itself for the whole launch, and an executor left with nothing is shut down.
    mutating func kill(_ taskID: String, killPolicy: Mesos_V1_KillPolicy?) -> [AgentAction] {
        var actions: [AgentAction] = []
        switch observed.executorStatus {
        case .terminating, .terminated: return actions
        case .registering, .subscribed: break
        }
        guard let task = tasks[taskID], !task.isTerminal else { return actions }
        if let index = queue.firstIndex(where: { $0.tasks.contains { $0.taskID.value == taskID } }) {
            let launch = queue.remove(at: index)
            for task in launch.tasks {
                agentUpdate(
                    task.taskID.value, .taskKilled, .taskKilledDuringLaunch, "Killed before delivery to the executor")
            }
            if !everSentTask && queue.isEmpty { shutdownExecutor(&actions) }
            return actions
        }
        var event = Self.event(.kill)
        event.kill.taskID.value = taskID
        if let killPolicy { event.kill.killPolicy = killPolicy }
        emit(event, &actions)
        return actions
    }

    /// A framework message; only a subscribed executor gets it, otherwise it is lost.
    mutating func sendMessage(_ data: Data) -> [AgentAction] {
        var event = Self.event(.message)
        event.message.data = data
        var actions: [AgentAction] = []
        if observed.executorStatus == .subscribed {
            emit(event, &actions)
        } else {
            recordLostEvent(event)
        }
        return actions
    }

    /// SHUTDOWN to a subscribed executor; either way the executor is terminating from now on.
    mutating func shutdown() -> [AgentAction] {
        var actions: [AgentAction] = []
        shutdownExecutor(&actions)
        return actions
    }

    private mutating func shutdownExecutor(_ actions: inout [AgentAction]) {
        switch observed.executorStatus {
        case .subscribed:
            emit(Self.event(.shutdown), &actions)
            setExecutorStatus(.terminating)
        case .registering:
            setExecutorStatus(.terminating)
        case .terminating, .terminated:
            break
        }
    }

    /// Closes the current stream without the terminating chunk; the agent still thinks the
    /// executor is subscribed, so events until the next SUBSCRIBE are lost.
    mutating func dropStream() -> [AgentAction] {
        guard let stream = currentStream else { return [] }
        setOpenStream(nil)
        return [.closeStream(stream, clean: false)]
    }

    /// The executor closed the connection of `stream`.
    mutating func streamClosedByPeer(_ stream: Int) {
        if stream == currentStream { setOpenStream(nil) }
    }

    /// The executor sent another request on the connection carrying `stream`.
    mutating func requestOnSubscribeConnection(_ stream: Int, method: String, uri: String) {
        violate(.requestOnSubscribeConnection, "\(method) \(uri) on the connection of stream \(stream); never answered")
    }

    /// The heartbeat interval of `stream` elapsed.
    mutating func heartbeat(_ stream: Int) -> [AgentAction] {
        guard stream == currentStream else { return [] }
        var actions: [AgentAction] = []
        emit(Self.event(.heartbeat), &actions)
        return actions
    }

    mutating func withholdAcknowledgements() { withholdingAcknowledgements = true }

    mutating func releaseAcknowledgements() -> [AgentAction] {
        withholdingAcknowledgements = false
        var actions: [AgentAction] = []
        let withheld = withheldAcknowledgements
        withheldAcknowledgements.removeAll()
        for event in withheld { sendAcknowledgement(event, &actions) }
        return actions
    }

    mutating func rejectUpdates(_ reject: Bool) { rejectingUpdates = reject }

    // MARK: Agent restart

    /// The agent process dies: its stream ends abruptly and nothing it had not sent survives.
    mutating func goDown() -> [AgentAction] {
        var actions: [AgentAction] = []
        if let stream = currentStream { actions.append(.closeStream(stream, clean: false)) }
        setOpenStream(nil)
        setPhase(.down)
        recoveryGeneration += 1
        withheldAcknowledgements.removeAll()
        withholdingAcknowledgements = false
        if !configuration.checkpoint { frameworkKnown = false }
        if observed.executorStatus == .subscribed {
            setExecutorStatus(.registering)
            restartedSinceSubscribe = true
        }
        return actions
    }

    /// Listening again; every request gets 503 until the containerizer is recovered.
    mutating func comeBack() { setPhase(.recoveringContainerizer) }

    /// Enters the re-registration window (RECOVERING). Without checkpointing there is nothing to
    /// reconnect and the agent runs at once. `window` nil: until ``endRecovery()``.
    mutating func recoverContainerizer(window: Duration?) -> [AgentAction] {
        guard observed.phase == .recoveringContainerizer else { return [] }
        guard configuration.checkpoint else {
            setPhase(.running)
            return []
        }
        setPhase(.recovering)
        recoveryGeneration += 1
        guard let window else { return [] }
        return [.endRecovery(after: window, generation: recoveryGeneration)]
    }

    mutating func recoveryWindowElapsed(generation: Int) {
        if generation == recoveryGeneration { endRecovery() }
    }

    /// Ends the re-registration window; an executor that did not re-subscribe is destroyed.
    mutating func endRecovery() {
        guard observed.phase == .recovering else { return }
        setPhase(.running)
        recoveryGeneration += 1
        guard restartedSinceSubscribe, observed.executorStatus == .registering else { return }
        violate(.missedReregistration, "executor did not re-subscribe within the re-registration window")
        setExecutorStatus(.terminated)
        let state: Mesos_V1_TaskState = configuration.hasCapability(.partitionAware) ? .taskGone : .taskLost
        for taskID in taskOrder where tasks[taskID]?.isTerminal == false {
            agentUpdate(taskID, state, .executorReregistrationTimeout, "Executor did not reregister within the timeout")
        }
    }
}
