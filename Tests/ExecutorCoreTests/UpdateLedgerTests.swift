import ExecutorCore
import MesosProto
import XCTest

final class UpdateLedgerTests: XCTestCase {
    private func update(_ task: String, _ n: UInt8) -> Mesos_V1_Executor_Call.Update {
        var update = Mesos_V1_Executor_Call.Update()
        update.status.taskID.value = task
        update.status.state = .taskRunning
        update.status.uuid = .init([n] + [UInt8](repeating: 0, count: 15))
        return update
    }

    private func uuid(_ n: UInt8) -> [UInt8] { [n] + [UInt8](repeating: 0, count: 15) }
    private func ids(_ updates: [Mesos_V1_Executor_Call.Update]) -> [UInt8] { updates.map { $0.status.uuid.first! } }

    func testOneInFlightPerTaskInOrder() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        ledger.append(update("a", 2))
        ledger.append(update("b", 3))
        XCTAssertEqual(ids(ledger.takeSendable()), [1, 3])
        XCTAssertEqual(ids(ledger.takeSendable()), [], "a:2 waits for a:1")
        ledger.accepted(uuid: uuid(1))
        XCTAssertEqual(ids(ledger.takeSendable()), [2])
    }

    func testRetryKeepsOrder() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        ledger.append(update("a", 2))
        XCTAssertEqual(ids(ledger.takeSendable()), [1])
        ledger.retry(uuid: uuid(1))
        XCTAssertEqual(ids(ledger.takeSendable()), [1], "the refused update goes again before its successor")
    }

    func testAckForgetsForeverAndUnknownAckIsHarmless() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        _ = ledger.takeSendable()
        ledger.accepted(uuid: uuid(1))
        XCTAssertNotNil(ledger.acknowledged(uuid: uuid(1)))
        XCTAssertNil(ledger.acknowledged(uuid: uuid(1)))
        XCTAssertTrue(ledger.isEmpty)
        ledger.append(update("a", 1))
        XCTAssertEqual(ledger.count, 1, "a new update with a fresh uuid is a new update")
    }

    func testAckBeforeAcceptance() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        _ = ledger.takeSendable()
        ledger.acknowledged(uuid: uuid(1))
        ledger.accepted(uuid: uuid(1))
        ledger.retry(uuid: uuid(1))
        XCTAssertEqual(ids(ledger.takeSendable()), [])
        XCTAssertTrue(ledger.isEmpty)
    }

    func testSubscribeCarriesUnacknowledgedAndMarksOnlyThoseAccepted() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        ledger.append(update("b", 2))
        _ = ledger.takeSendable()
        ledger.accepted(uuid: uuid(1))
        ledger.disconnected()
        XCTAssertEqual(ids(ledger.unacknowledged), [1, 2])
        let carried = Set(ledger.unacknowledged.map { [UInt8]($0.status.uuid) })
        ledger.append(update("c", 3))
        ledger.subscribed(carrying: carried)
        XCTAssertEqual(ids(ledger.takeSendable()), [3], "only the update created after SUBSCRIBE is posted")
        XCTAssertEqual(ids(ledger.unacknowledged), [1, 2, 3])
    }

    func testRejectedIsDropped() {
        var ledger = UpdateLedger()
        ledger.append(update("a", 1))
        _ = ledger.takeSendable()
        XCTAssertNotNil(ledger.rejected(uuid: uuid(1)))
        XCTAssertTrue(ledger.isEmpty)
        XCTAssertTrue(ledger.isSettled(taskID: "a"))
    }
}
