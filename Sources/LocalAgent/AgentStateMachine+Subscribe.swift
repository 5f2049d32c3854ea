import Foundation
import MesosProto

extension AgentStateMachine {
    /// SUBSCRIBE after validation, as the agent's `Slave::subscribe` handles it; returns the new stream's number.
    mutating func subscribe(_ subscribe: Mesos_V1_Executor_Call.Subscribe, _ actions: inout [AgentAction]) -> Int {
        let stream = nextStreamNumber
        nextStreamNumber += 1
        if let old = currentStream {
            violate(.subscribeWhileSubscribed, "SUBSCRIBE while stream \(old) is still open")
            actions.append(.closeStream(old, clean: true))
        }
        recordSubscription()
        setOpenStream(stream)
        restartedSinceSubscribe = false

        if observed.executorStatus == .terminating {
            emit(Self.event(.shutdown), &actions)
            actions.append(.closeStream(stream, clean: true))
            setOpenStream(nil)
            return stream
        }
        setExecutorStatus(.subscribed)

        // Delivered tasks the executor does not list never reached it: the agent ends them TASK_LOST
        // (TASK_DROPPED for a partition-aware framework).
        let listed = Set(subscribe.unacknowledgedTasks.map(\.taskID.value))
        for taskID in taskOrder {
            guard let task = tasks[taskID], task.delivered, task.state == .taskStaging, !listed.contains(taskID)
            else { continue }
            let state: Mesos_V1_TaskState = configuration.hasCapability(.partitionAware) ? .taskDropped : .taskLost
            agentUpdate(taskID, state, .agentRestarted, "Task launched during agent restart")
        }

        var subscribed = Self.event(.subscribed)
        subscribed.subscribed.executorInfo = configuration.executorInfo
        subscribed.subscribed.frameworkInfo = configuration.frameworkInfo
        subscribed.subscribed.agentInfo = agentInfo
        subscribed.subscribed.containerID.value = configuration.containerID
        emit(subscribed, &actions)

        let launches = queue
        queue.removeAll()
        for launch in launches { deliver(launch, &actions) }

        for update in subscribe.unacknowledgedUpdates {
            let status = update.status
            if let problem = ExecutorCallValidation.validate(status, executorID: configuration.executorID) {
                violate(.invalidUnacknowledgedUpdate, "task \(status.taskID.value): \(problem)")
                // The agent only skips updates it cannot identify; it forces the source to SOURCE_EXECUTOR.
                let unusable = ExecutorCallValidation.uuidProblem(status.uuid) != nil || status.state == .taskStaging
                if !status.hasUuid || unusable { continue }
            }
            processUpdate(update, executorID: configuration.executorID, resent: true, &actions)
        }
        return stream
    }

    var agentInfo: Mesos_V1_AgentInfo {
        var info = Mesos_V1_AgentInfo()
        info.hostname = configuration.hostname
        info.id.value = configuration.agentID
        info.port = Int32(clamping: port)
        return info
    }

    mutating func deliver(_ launch: QueuedLaunch, _ actions: inout [AgentAction]) {
        for task in launch.tasks { tasks[task.taskID.value]?.delivered = true }
        everSentTask = true
        emit(launch.event, &actions)
    }

    /// The status update path (the agent's `Slave::statusUpdate`), for UPDATE calls and SUBSCRIBE's unacknowledged updates.
    mutating func processUpdate(
        _ update: Mesos_V1_Executor_Call.Update,
        executorID: String,
        resent: Bool,
        _ actions: inout [AgentAction]
    ) {
        var status = update.status
        let taskID = status.taskID.value
        let uuid = status.uuid
        if status.hasAgentID && status.agentID.value != configuration.agentID {
            violate(.foreignAgentID, "update for task \(taskID) names agent \(status.agentID.value); ignored, no ACK")
            return
        }
        guard var task = tasks[taskID] else {
            violate(.updateForUnknownTask, "\(status.state) for task \(taskID), which this executor was never given")
            return
        }
        if task.uuids.contains(uuid) {
            modifyUpdate(uuid: uuid) { $0.duplicates += 1 }
            if !resent, let stream = ackStreams[uuid], stream == currentStream {
                violate(
                    .updateAfterAcknowledgement, "\(status.state) for task \(taskID) re-sent after its ACKNOWLEDGED")
            }
            acknowledge(taskID, uuid, &actions)
            return
        }
        if task.isTerminal {
            violate(.updateAfterTerminal, "\(status.state) for task \(taskID) after \(task.state); dropped, ACKed")
            acknowledge(taskID, uuid, &actions)
            return
        }
        if !task.delivered {
            // The executor can only know a queued task's id by guessing it. A real agent accepts a
            // terminal update (dropping the launch) and aborts on anything else.
            guard status.state.isTerminal else {
                violate(.updateForUnknownTask, "\(status.state) for task \(taskID), which was not delivered yet")
                return
            }
            queue.removeAll { launch in launch.tasks.contains { $0.taskID.value == taskID } }
            task.delivered = true
        }
        if status.state == .taskKilling && !configuration.hasCapability(.taskKillingState) {
            violate(.killingWithoutCapability, "TASK_KILLING for task \(taskID)")
        }
        if !status.hasAgentID { status.agentID.value = configuration.agentID }
        if !status.hasExecutorID { status.executorID.value = executorID }
        task.uuids.insert(uuid)
        tasks[taskID] = task
        setTaskState(taskID, status.state)
        recordUpdate(ObservedUpdate(status: status, uuid: uuid, acknowledged: false, duplicates: 0))
        acknowledge(taskID, uuid, &actions)
    }

    mutating func acknowledge(_ taskID: String, _ uuid: Data, _ actions: inout [AgentAction]) {
        var event = Self.event(.acknowledged)
        event.acknowledged.taskID.value = taskID
        event.acknowledged.uuid = uuid
        if withholdingAcknowledgements {
            withheldAcknowledgements.append(event)
        } else {
            sendAcknowledgement(event, &actions)
        }
    }

    mutating func sendAcknowledgement(_ event: Mesos_V1_Executor_Event, _ actions: inout [AgentAction]) {
        guard emit(event, &actions), let stream = currentStream else { return }
        ackStreams[event.acknowledged.uuid] = stream
        modifyUpdate(uuid: event.acknowledged.uuid) { $0.acknowledged = true }
    }

    /// An update the agent makes itself (source agent), e.g. TASK_LOST or TASK_KILLED before delivery.
    mutating func agentUpdate(
        _ taskID: String,
        _ state: Mesos_V1_TaskState,
        _ reason: Mesos_V1_TaskStatus.Reason,
        _ message: String
    ) {
        var status = Mesos_V1_TaskStatus()
        status.taskID.value = taskID
        status.state = state
        status.source = .agent
        status.reason = reason
        status.message = message
        status.agentID.value = configuration.agentID
        status.executorID.value = configuration.executorID
        status.uuid = Self.randomUUID()
        setTaskState(taskID, state)
        recordUpdate(ObservedUpdate(status: status, uuid: status.uuid, acknowledged: false, duplicates: 0))
    }

    static func event(_ type: Mesos_V1_Executor_Event.TypeEnum) -> Mesos_V1_Executor_Event {
        var event = Mesos_V1_Executor_Event()
        event.type = type
        return event
    }

    static func randomUUID() -> Data {
        withUnsafeBytes(of: UUID().uuid) { Data($0) }
    }
}
