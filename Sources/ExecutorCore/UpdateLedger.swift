public import MesosProto

/// Every status update from creation until the agent acknowledges it (matched by uuid).
///
/// Updates of one task are delivered in order: a task's next update is handed out only after
/// the previous one was accepted (202) by the agent. An acknowledged update is forgotten and can
/// never be sent again. Pure value type; the runtime performs the sends.
public struct UpdateLedger: Sendable {
    enum Delivery: Sendable, Equatable {
        /// Not yet accepted by the agent.
        case pending
        /// Handed out to the sender; the answer is outstanding.
        case inFlight
        /// Accepted (202, or carried by a SUBSCRIBE that the agent answered); awaiting ACK.
        case accepted
    }

    struct Entry: Sendable {
        var update: Mesos_V1_Executor_Call.Update
        var delivery: Delivery
    }

    private var entries: [[UInt8]: Entry] = [:]
    /// uuids in creation order.
    private var order: [[UInt8]] = []

    public init() {}

    /// Updates not yet acknowledged, oldest first (what SUBSCRIBE must carry).
    public var unacknowledged: [Mesos_V1_Executor_Call.Update] {
        order.compactMap { entries[$0]?.update }
    }

    public var isEmpty: Bool { order.isEmpty }
    public var count: Int { order.count }

    /// Whether every update of `taskID` has been acknowledged.
    public func isSettled(taskID: String) -> Bool {
        !order.contains { entries[$0]?.update.status.taskID.value == taskID }
    }

    /// Records a new update; it is pending until handed out.
    public mutating func append(_ update: Mesos_V1_Executor_Call.Update) {
        let uuid = [UInt8](update.status.uuid)
        guard entries[uuid] == nil else { return }
        entries[uuid] = Entry(update: update, delivery: .pending)
        order.append(uuid)
    }

    /// The updates that may be sent now: for each task, its oldest unaccepted update, provided
    /// no earlier update of the same task is still in flight. They are marked in flight.
    public mutating func takeSendable(limit: Int = .max) -> [Mesos_V1_Executor_Call.Update] {
        var blockedTasks = Set<String>()
        var taken: [Mesos_V1_Executor_Call.Update] = []
        for uuid in order where taken.count < limit {
            guard let entry = entries[uuid] else { continue }
            let task = entry.update.status.taskID.value
            switch entry.delivery {
            case .accepted:
                continue
            case .inFlight:
                blockedTasks.insert(task)
            case .pending:
                if blockedTasks.insert(task).inserted {
                    entries[uuid]?.delivery = .inFlight
                    taken.append(entry.update)
                }
            }
        }
        return taken
    }

    /// The agent accepted (202) the update with `uuid`.
    public mutating func accepted(uuid: [UInt8]) {
        if entries[uuid]?.delivery == .inFlight { entries[uuid]?.delivery = .accepted }
    }

    /// Sending the update failed in a way worth retrying: it becomes pending again.
    public mutating func retry(uuid: [UInt8]) {
        if entries[uuid]?.delivery == .inFlight { entries[uuid]?.delivery = .pending }
    }

    /// The agent refused the update for good (4xx): it is dropped, since it can never be acknowledged.
    public mutating func rejected(uuid: [UInt8]) -> Mesos_V1_Executor_Call.Update? {
        remove(uuid)
    }

    /// A SUBSCRIBE carrying the updates with `uuids` was answered: those count as accepted.
    /// Updates created after the SUBSCRIBE was built are not among them and stay pending.
    public mutating func subscribed(carrying uuids: Set<[UInt8]>) {
        for uuid in uuids where entries[uuid] != nil { entries[uuid]?.delivery = .accepted }
    }

    /// The connection was lost: anything in flight has an unknown fate and is pending again
    /// (the next SUBSCRIBE carries it anyway).
    public mutating func disconnected() {
        for uuid in order where entries[uuid]?.delivery == .inFlight { entries[uuid]?.delivery = .pending }
    }

    /// ACKNOWLEDGED: forget the update. Returns it, or nil for an unknown uuid.
    @discardableResult
    public mutating func acknowledged(uuid: [UInt8]) -> Mesos_V1_Executor_Call.Update? {
        remove(uuid)
    }

    private mutating func remove(_ uuid: [UInt8]) -> Mesos_V1_Executor_Call.Update? {
        guard let entry = entries.removeValue(forKey: uuid) else { return nil }
        order.removeAll { $0 == uuid }
        return entry.update
    }
}
