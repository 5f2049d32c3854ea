import Foundation
import LocalAgent
import MesosCodec
import MesosProto

/// Builders for the calls an executor sends, valid unless a test breaks them on purpose.
struct Calls {
    var configuration: LocalAgentConfiguration

    func call(_ type: Mesos_V1_Executor_Call.TypeEnum) -> Mesos_V1_Executor_Call {
        var call = Mesos_V1_Executor_Call()
        call.type = type
        call.executorID.value = configuration.executorID
        call.frameworkID.value = configuration.frameworkID
        return call
    }

    func subscribe(
        tasks: [Mesos_V1_TaskInfo] = [],
        updates: [Mesos_V1_Executor_Call.Update] = []
    ) -> Mesos_V1_Executor_Call {
        var call = call(.subscribe)
        call.subscribe.unacknowledgedTasks = tasks
        call.subscribe.unacknowledgedUpdates = updates
        return call
    }

    func status(_ taskID: String, _ state: Mesos_V1_TaskState, uuid: Data = newUUID()) -> Mesos_V1_TaskStatus {
        var status = Mesos_V1_TaskStatus()
        status.taskID.value = taskID
        status.state = state
        status.source = .executor
        status.uuid = uuid
        status.executorID.value = configuration.executorID
        status.timestamp = 1_700_000_000
        return status
    }

    func update(_ status: Mesos_V1_TaskStatus) -> Mesos_V1_Executor_Call {
        var call = call(.update)
        call.update.status = status
        return call
    }

    func update(_ taskID: String, _ state: Mesos_V1_TaskState, uuid: Data = newUUID()) -> Mesos_V1_Executor_Call {
        update(status(taskID, state, uuid: uuid))
    }

    func message(_ data: String) -> Mesos_V1_Executor_Call {
        var call = call(.message)
        call.message.data = Data(data.utf8)
        return call
    }

    /// As the C++ library sends it: dummy ids.
    func heartbeat() -> Mesos_V1_Executor_Call {
        var call = Mesos_V1_Executor_Call()
        call.type = .heartbeat
        call.executorID.value = "unused"
        call.frameworkID.value = "unused"
        return call
    }
}

func newUUID() -> Data {
    withUnsafeBytes(of: UUID().uuid) { Data($0) }
}

func encoded(_ call: Mesos_V1_Executor_Call, _ encoding: WireEncoding) throws -> [UInt8] {
    try encoding.encode(call)
}

func asUpdate(_ call: Mesos_V1_Executor_Call) -> Mesos_V1_Executor_Call.Update { call.update }
