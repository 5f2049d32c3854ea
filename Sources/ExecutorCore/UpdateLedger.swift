public import MesosProto
import SystemSupport

/// Every status update from creation until the agent acknowledges it (matched by uuid).
///
/// Updates of one task are delivered in order: a task's next update is handed out only after
/// the previous one was accepted (202) by the agent. An acknowledged update is forgotten and can
/// never be sent again. Pure value type; the runtime performs the sends.
///
/// Work per operation is bounded by one task's own updates (a handful), never by how many
/// updates are outstanding: an executor with thousands of tasks in flight pays no scan per ACK.
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
        /// Creation order, across tasks.
        let sequence: Int
        var taskID: String { update.status.taskID.value }
    }

    private var entries: [UpdateKey: Entry] = [:]
    /// Each task's unacknowledged updates (uuids), oldest first.
    private var queues: [String: [UpdateKey]] = [:]
    /// Tasks whose oldest unaccepted update is pending, each with that update's sequence: each
    /// can send that update now.
    private var sendable: [String: Int] = [:]
    /// The same, oldest first; entries no longer in `sendable` are skipped when they come up.
    private var sendableOrder = MinimumHeap<SendableTask>()
    private var nextSequence = 0

    public init() {}

    /// Updates not yet acknowledged, oldest first (what SUBSCRIBE must carry).
    public var unacknowledged: [Mesos_V1_Executor_Call.Update] {
        entries.values.sorted { $0.sequence < $1.sequence }.map(\.update)
    }

    public var isEmpty: Bool { entries.isEmpty }
    public var count: Int { entries.count }

    /// Whether every update of `taskID` has been acknowledged.
    public func isSettled(taskID: String) -> Bool {
        queues[taskID] == nil
    }

    /// Records a new update; it is pending until handed out.
    public mutating func append(_ update: Mesos_V1_Executor_Call.Update) {
        let uuid = UpdateKey([UInt8](update.status.uuid))
        guard entries[uuid] == nil else { return }
        let entry = Entry(update: update, delivery: .pending, sequence: nextSequence)
        nextSequence += 1
        entries[uuid] = entry
        queues[entry.taskID, default: []].append(uuid)
        refresh(entry.taskID)
    }

    /// The updates that may be sent now, oldest first: for each task, its oldest unaccepted
    /// update, provided it is not in flight already. They are marked in flight.
    public mutating func takeSendable(limit: Int = .max) -> [Mesos_V1_Executor_Call.Update] {
        var taken: [Mesos_V1_Executor_Call.Update] = []
        while taken.count < limit, let next = sendableOrder.popMinimum() {
            let task = next.task
            guard sendable[task] == next.sequence, let uuid = head(of: task),
                let index = entries.index(forKey: uuid)
            else { continue }
            sendable[task] = nil
            entries.values[index].delivery = .inFlight
            taken.append(entries.values[index].update)
        }
        return taken
    }

    /// The agent accepted (202) the update with `uuid`.
    public mutating func accepted(uuid: [UInt8]) {
        mark(UpdateKey(uuid), inFlightAs: .accepted)
    }

    /// Sending the update failed in a way worth retrying: it becomes pending again.
    public mutating func retry(uuid: [UInt8]) {
        mark(UpdateKey(uuid), inFlightAs: .pending)
    }

    /// The agent refused the update for good (4xx): it is dropped, since it can never be acknowledged.
    public mutating func rejected(uuid: [UInt8]) -> Mesos_V1_Executor_Call.Update? {
        remove(UpdateKey(uuid))
    }

    /// A SUBSCRIBE carrying the updates with `uuids` was answered: those count as accepted.
    /// Updates created after the SUBSCRIBE was built are not among them and stay pending.
    public mutating func subscribed(carrying uuids: Set<[UInt8]>) {
        var touched: Set<String> = []
        for uuid in uuids {
            guard let index = entries.index(forKey: UpdateKey(uuid)) else { continue }
            entries.values[index].delivery = .accepted
            touched.insert(entries.values[index].taskID)
        }
        for task in touched { refresh(task) }
    }

    /// The connection was lost: anything in flight has an unknown fate and is pending again
    /// (the next SUBSCRIBE carries it anyway).
    public mutating func disconnected() {
        var touched: Set<String> = []
        for (uuid, entry) in entries where entry.delivery == .inFlight {
            entries[uuid]?.delivery = .pending
            touched.insert(entry.taskID)
        }
        for task in touched { refresh(task) }
    }

    /// ACKNOWLEDGED: forget the update. Returns it, or nil for an unknown uuid.
    @discardableResult
    public mutating func acknowledged(uuid: [UInt8]) -> Mesos_V1_Executor_Call.Update? {
        remove(UpdateKey(uuid))
    }

    /// An in-flight update's answer: it becomes `delivery` (anything else is left as it is).
    private mutating func mark(_ uuid: UpdateKey, inFlightAs delivery: Delivery) {
        guard let index = entries.index(forKey: uuid), entries.values[index].delivery == .inFlight else { return }
        entries.values[index].delivery = delivery
        refresh(entries.values[index].taskID)
    }

    private mutating func remove(_ uuid: UpdateKey) -> Mesos_V1_Executor_Call.Update? {
        guard let entry = entries.removeValue(forKey: uuid) else { return nil }
        let task = entry.taskID
        queues[task]?.removeAll { $0 == uuid }
        if queues[task]?.isEmpty == true { queues[task] = nil }
        refresh(task)
        return entry.update
    }

    /// The task's oldest unaccepted update.
    private func head(of task: String) -> UpdateKey? {
        queues[task]?.first { entries[$0]?.delivery != .accepted }
    }

    /// Re-establishes `sendable` for one task: it can send when its oldest unaccepted update is
    /// pending (an in-flight one blocks the rest of its updates).
    private mutating func refresh(_ task: String) {
        guard let uuid = head(of: task), let entry = entries[uuid], entry.delivery == .pending else {
            sendable[task] = nil
            return
        }
        if sendable[task] != entry.sequence {
            sendable[task] = entry.sequence
            sendableOrder.insert(SendableTask(sequence: entry.sequence, task: task))
        }
    }
}

/// A status update's uuid as the ledger's key: the 16 bytes of a uuid (what the executor makes)
/// held in place, anything else as it came. Held as an array, a key was a second allocation to
/// reach for every comparison and was hashed a byte at a call, and the ledger looks uuids up
/// several times for every update: with thousands of updates outstanding, finding them was 2 % of
/// the executor's samples over a burst of command tasks.
private enum UpdateKey: Hashable, Sendable {
    case uuid(UInt64, UInt64)
    case other([UInt8])

    init(_ bytes: [UInt8]) {
        if bytes.count == 16 {
            self = bytes.withUnsafeBytes {
                .uuid(
                    $0.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                    $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
            }
        } else {
            self = .other(bytes)
        }
    }
}

/// A task whose oldest unaccepted update became sendable, ordered by that update's sequence.
private struct SendableTask: Comparable, Sendable {
    let sequence: Int
    let task: String

    static func < (lhs: SendableTask, rhs: SendableTask) -> Bool {
        (lhs.sequence, lhs.task) < (rhs.sequence, rhs.task)
    }
}
