import Foundation
import MesosCodec
import MesosProto
import NIOHTTP1
import Testing

@testable import LocalAgent

/// The protocol logic without sockets: requests in, replies and actions out.
struct AgentStateMachineTests {
    var machine = AgentStateMachine(configuration: testConfiguration(checkpoint: true))
    var calls: Calls { Calls(configuration: machine.configuration) }

    mutating func send(
        _ call: Mesos_V1_Executor_Call,
        _ encoding: WireEncoding = .protobuf
    ) throws -> (reply: AgentReply, actions: [AgentAction]) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: encoding.contentType)
        let request = ExecutorRequest(
            method: .POST, uri: "/api/v1/executor", headers: headers, body: try encoding.encode(call))
        return machine.receive(request)
    }

    static func events(_ actions: [AgentAction]) -> [Mesos_V1_Executor_Event] {
        actions.compactMap { action in
            if case .send(let event, _) = action { return event }
            return nil
        }
    }

    static func task(_ id: String) -> Mesos_V1_TaskInfo {
        var task = Mesos_V1_TaskInfo()
        task.name = id
        task.taskID.value = id
        task.agentID.value = "local-agent-S0"
        return task
    }

    @Test mutating func subscribeDeliversSubscribedThenQueuedLaunches() throws {
        _ = machine.launch(.task(Self.task("t1")))
        #expect(machine.observed.taskStates["t1"] == .taskStaging)
        let (reply, actions) = try send(calls.subscribe())
        #expect(reply == .stream(1, .json))  // no Accept header: JSON
        #expect(Self.events(actions).map(\.type) == [.subscribed, .launch])
        #expect(Self.events(actions)[0].subscribed.containerID.value == machine.configuration.containerID)
        #expect(machine.observed.executorStatus == .subscribed)
    }

    @Test mutating func updateIsStoredAndAcknowledgedOnceDuplicatesReAcknowledged() throws {
        _ = try send(calls.subscribe())
        _ = machine.launch(.task(Self.task("t1")))
        let uuid = newUUID()
        let first = try send(calls.update("t1", .taskRunning, uuid: uuid))
        #expect(first.reply == .respond(.accepted))
        #expect(Self.events(first.actions).map(\.acknowledged.uuid) == [uuid])
        let again = try send(calls.update("t1", .taskRunning, uuid: uuid))
        #expect(Self.events(again.actions).map(\.acknowledged.uuid) == [uuid])
        #expect(machine.observed.updates.count == 1)
        #expect(machine.observed.updates[0].duplicates == 1)
        #expect(machine.observed.violations.map(\.kind) == [.updateAfterAcknowledgement])
    }

    @Test mutating func updateAfterTerminalIsDroppedButAcknowledged() throws {
        _ = try send(calls.subscribe())
        _ = machine.launch(.task(Self.task("t1")))
        _ = try send(calls.update("t1", .taskFinished))
        let late = try send(calls.update("t1", .taskRunning))
        #expect(Self.events(late.actions).map(\.type) == [.acknowledged])
        #expect(machine.observed.taskStates["t1"] == .taskFinished)
        #expect(machine.observed.updates.count == 1)
        #expect(machine.observed.violations.map(\.kind) == [.updateAfterTerminal])
    }

    @Test mutating func unknownTaskAndForeignAgentGetNoAcknowledgement() throws {
        _ = try send(calls.subscribe())
        _ = machine.launch(.task(Self.task("t1")))
        #expect(Self.events(try send(calls.update("nope", .taskRunning)).actions).isEmpty)
        var status = calls.status("t1", .taskRunning)
        status.agentID.value = "another-agent"
        #expect(Self.events(try send(calls.update(status)).actions).isEmpty)
        #expect(machine.observed.updates.isEmpty)
        #expect(machine.observed.violations.map(\.kind) == [.updateForUnknownTask, .foreignAgentID])
    }

    @Test mutating func killOfQueuedTaskIsAnsweredByTheAgentAndShutsDownAnEmptyExecutor() throws {
        _ = machine.launch(.task(Self.task("t1")))
        let actions = machine.kill("t1", killPolicy: nil)
        #expect(Self.events(actions).isEmpty)
        let killed = try #require(machine.observed.updates.first)
        #expect(killed.status.state == .taskKilled)
        #expect(killed.status.reason == .taskKilledDuringLaunch)
        #expect(killed.isFromAgent)
        #expect(machine.observed.executorStatus == .terminating)
        let subscribe = try send(calls.subscribe())
        #expect(Self.events(subscribe.actions).map(\.type) == [.shutdown])
        #expect(subscribe.actions.contains { if case .closeStream(1, clean: true) = $0 { true } else { false } })
    }

    @Test mutating func resubscribeWithoutListingAStagingTaskLosesIt() throws {
        _ = try send(calls.subscribe())
        _ = machine.launch(.task(Self.task("listed")))
        _ = machine.launch(.task(Self.task("forgotten")))
        _ = machine.goDown()
        machine.comeBack()
        _ = machine.recoverContainerizer(window: nil)
        #expect(machine.observed.phase == .recovering)
        let update = calls.update("listed", .taskRunning)
        let (reply, actions) = try send(calls.subscribe(tasks: [Self.task("listed")], updates: [update.update]))
        #expect(reply == .stream(2, .json))
        #expect(Self.events(actions).map(\.type) == [.subscribed, .acknowledged])
        #expect(machine.observed.taskStates == ["listed": .taskRunning, "forgotten": .taskLost])
        let lost = try #require(machine.observed.updates(forTask: "forgotten").first)
        #expect(lost.status.reason == .agentRestarted)
        #expect(lost.status.source == .agent)
        // UPDATE is refused for the rest of the window.
        #expect(
            try send(calls.update("listed", .taskFinished)).reply
                == .respond(.error(.serviceUnavailable, AgentStateMachine.notRecovered)))
        machine.endRecovery()
        #expect(try send(calls.update("listed", .taskFinished)).reply == .respond(.accepted))
    }

    @Test mutating func missingTheReregistrationWindowDestroysTheExecutor() throws {
        _ = try send(calls.subscribe())
        _ = machine.launch(.task(Self.task("t1")))
        _ = machine.goDown()
        machine.comeBack()
        let actions = machine.recoverContainerizer(window: .seconds(2))
        guard case .endRecovery(_, let generation) = try #require(actions.first) else {
            Issue.record("expected a recovery timer")
            return
        }
        machine.recoveryWindowElapsed(generation: generation)
        #expect(machine.observed.phase == .running)
        #expect(machine.observed.executorStatus == .terminated)
        #expect(machine.observed.taskStates["t1"] == .taskLost)
        #expect(machine.observed.violations.map(\.kind) == [.missedReregistration])
    }

    @Test mutating func withheldAcknowledgementsAreSentOnRelease() throws {
        _ = try send(calls.subscribe())
        _ = machine.launch(.task(Self.task("t1")))
        machine.withholdAcknowledgements()
        #expect(Self.events(try send(calls.update("t1", .taskRunning)).actions).isEmpty)
        #expect(machine.observed.updates.first?.acknowledged == false)
        #expect(Self.events(machine.releaseAcknowledgements()).map(\.type) == [.acknowledged])
        #expect(machine.observed.updates.first?.acknowledged == true)
    }

    @Test mutating func taskKillingWithoutTheCapabilityIsAViolation() throws {
        _ = try send(calls.subscribe())
        _ = machine.launch(.task(Self.task("t1")))
        _ = try send(calls.update("t1", .taskKilling))
        #expect(machine.observed.violations.map(\.kind) == [.killingWithoutCapability])
    }
}
