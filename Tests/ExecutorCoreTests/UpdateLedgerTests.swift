import ExecutorCore
import Foundation
import MesosProto
import SeededRandom
import Testing

struct UpdateLedgerTests {
    private func update(_ task: String, _ n: UInt8) -> Mesos_V1_Executor_Call.Update {
        var update = Mesos_V1_Executor_Call.Update()
        update.status.taskID.value = task
        update.status.state = .taskRunning
        update.status.uuid = .init([n] + [UInt8](repeating: 0, count: 15))
        return update
    }

    private func uuid(_ n: UInt8) -> [UInt8] { [n] + [UInt8](repeating: 0, count: 15) }
    private func ids(_ updates: [Mesos_V1_Executor_Call.Update]) -> [UInt8] { updates.map { $0.status.uuid.first! } }

    @Test func oneInFlightPerTaskInOrder() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        ledger.append(update("a", 2))
        ledger.append(update("b", 3))
        #expect(ids(ledger.takeSendable()) == [1, 3])
        #expect(ids(ledger.takeSendable()) == [], "a:2 waits for a:1")
        ledger.accepted(uuid: uuid(1))
        #expect(ids(ledger.takeSendable()) == [2])
    }

    @Test func retryKeepsOrder() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        ledger.append(update("a", 2))
        #expect(ids(ledger.takeSendable()) == [1])
        ledger.retry(uuid: uuid(1))
        #expect(ids(ledger.takeSendable()) == [1], "the refused update goes again before its successor")
    }

    @Test func ackForgetsForeverAndUnknownAckIsHarmless() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        _ = ledger.takeSendable()
        ledger.accepted(uuid: uuid(1))
        #expect(ledger.acknowledged(uuid: uuid(1)) != nil)
        #expect(ledger.acknowledged(uuid: uuid(1)) == nil)
        #expect(ledger.isEmpty)
        ledger.append(update("a", 1))
        #expect(ledger.count == 1, "a new update with a fresh uuid is a new update")
    }

    @Test func uuidsOfAnyLengthAreMatchedWhole() {
        var ledger = UpdateLedger()
        var short = update("a", 1)
        short.status.uuid = Data([7, 7, 7])
        ledger.append(short)
        ledger.append(update("b", 2))
        #expect(ids(ledger.takeSendable()) == [7, 2])
        ledger.accepted(uuid: [7, 7, 7])
        ledger.accepted(uuid: uuid(2))
        #expect(ledger.acknowledged(uuid: [7, 7]) == nil, "a prefix is another uuid")
        #expect(ledger.acknowledged(uuid: uuid(2) + [0]) == nil, "so is a longer one")
        #expect(ledger.acknowledged(uuid: []) == nil)
        #expect(ledger.count == 2)
        #expect(ledger.acknowledged(uuid: [7, 7, 7]) != nil)
        #expect(ledger.acknowledged(uuid: uuid(2)) != nil)
        #expect(ledger.isEmpty)
    }

    @Test func ackBeforeAcceptance() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        _ = ledger.takeSendable()
        ledger.acknowledged(uuid: uuid(1))
        ledger.accepted(uuid: uuid(1))
        ledger.retry(uuid: uuid(1))
        #expect(ids(ledger.takeSendable()) == [])
        #expect(ledger.isEmpty)
    }

    @Test func subscribeCarriesUnacknowledgedAndMarksOnlyThoseAccepted() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        ledger.append(update("b", 2))
        _ = ledger.takeSendable()
        ledger.accepted(uuid: uuid(1))
        ledger.disconnected()
        #expect(ids(ledger.unacknowledged) == [1, 2])
        let carried = Set(ledger.unacknowledged.map { [UInt8]($0.status.uuid) })
        ledger.append(update("c", 3))
        ledger.subscribed(carrying: carried)
        #expect(ids(ledger.takeSendable()) == [3], "only the update created after SUBSCRIBE is posted")
        #expect(ids(ledger.unacknowledged) == [1, 2, 3])
    }

    @Test func rejectedIsDropped() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        _ = ledger.takeSendable()
        #expect(ledger.rejected(uuid: uuid(1)) != nil)
        #expect(ledger.isEmpty)
        #expect(ledger.isSettled(taskID: "a"))
    }

    /// The ledger agrees, operation by operation, with the plainest model of its rules (a scan
    /// over every update in creation order) over long seeded random sequences.
    @Test func agreesWithAPlainModelOverRandomOperations() {
        for seed in UInt64(1)...40 {
            var random = SeededRandom(seed: seed)
            var ledger = UpdateLedger()
            var model = PlainLedger()
            var made: [UInt8] = []
            for step in 0..<400 {
                let label = "seed \(seed) step \(step)"
                let known = made.isEmpty ? UInt8(0) : made[Int(random.next() % UInt64(made.count))]
                switch random.next() % 8 {
                case 0, 1:
                    guard made.count < 250 else { continue }
                    let n = UInt8(made.count + 1)
                    made.append(n)
                    let task = "t\(random.next() % 5)"
                    ledger.append(update(task, n))
                    model.append(task: task, n)
                case 2, 3:
                    let limit = random.next() % 3 == 0 ? Int.max : Int(random.next() % 3) + 1
                    #expect(ids(ledger.takeSendable(limit: limit)) == model.takeSendable(limit: limit), "\(label)")
                case 4:
                    ledger.accepted(uuid: uuid(known))
                    model.set(known, from: .inFlight, to: .accepted)
                case 5:
                    if random.next() % 2 == 0 {
                        ledger.retry(uuid: uuid(known))
                        model.set(known, from: .inFlight, to: .pending)
                    } else {
                        ledger.disconnected()
                        model.disconnected()
                    }
                case 6:
                    let chosen = Set(made.filter { _ in random.next() % 4 == 0 })
                    ledger.subscribed(carrying: Set(chosen.map(uuid)))
                    model.subscribed(chosen)
                default:
                    let removed =
                        random.next() % 5 == 0
                        ? ledger.rejected(uuid: uuid(known)) : ledger.acknowledged(uuid: uuid(known))
                    #expect(removed?.status.uuid.first == model.remove(known), "\(label)")
                }
                #expect(ids(ledger.unacknowledged) == model.order, "\(label)")
                #expect(ledger.count == model.order.count, "\(label)")
                for task in 0..<5 {
                    #expect(
                        ledger.isSettled(taskID: "t\(task)") == !model.tasks.values.contains("t\(task)"), "\(label)")
                }
            }
        }
    }
}

/// The ledger's rules in their plainest form: one scan over all updates in creation order.
private struct PlainLedger {
    enum Delivery { case pending, inFlight, accepted }
    var order: [UInt8] = []
    var tasks: [UInt8: String] = [:]
    var delivery: [UInt8: Delivery] = [:]

    mutating func append(task: String, _ n: UInt8) {
        order.append(n)
        tasks[n] = task
        delivery[n] = .pending
    }

    mutating func takeSendable(limit: Int) -> [UInt8] {
        var blocked = Set<String>()
        var taken: [UInt8] = []
        for n in order where taken.count < limit {
            let task = tasks[n]!
            switch delivery[n]! {
            case .accepted: continue
            case .inFlight: blocked.insert(task)
            case .pending:
                if blocked.insert(task).inserted {
                    delivery[n] = .inFlight
                    taken.append(n)
                }
            }
        }
        return taken
    }

    mutating func set(_ n: UInt8, from: Delivery, to: Delivery) {
        if delivery[n] == from { delivery[n] = to }
    }

    mutating func disconnected() {
        for n in order where delivery[n] == .inFlight { delivery[n] = .pending }
    }

    mutating func subscribed(_ chosen: Set<UInt8>) {
        for n in chosen where delivery[n] != nil { delivery[n] = .accepted }
    }

    mutating func remove(_ n: UInt8) -> UInt8? {
        guard delivery.removeValue(forKey: n) != nil else { return nil }
        tasks[n] = nil
        order.removeAll { $0 == n }
        return n
    }
}
