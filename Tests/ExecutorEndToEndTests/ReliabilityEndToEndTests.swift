import ExecutorCore
import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import ProcessSupervision
import SystemTestLock
import Testing

/// Not one update lost or duplicated across agent restarts, 503s and withheld acknowledgements.
@Suite(.serialized, .systemTest)
struct ReliabilityEndToEndTests {
    /// Every UPDATE call and every update carried by a SUBSCRIBE, by uuid.
    private func deliveries(_ state: LocalAgentState) -> [(uuid: Data, status: Int, viaSubscribe: Bool)] {
        state.requests.flatMap { request -> [(uuid: Data, status: Int, viaSubscribe: Bool)] in
            guard let call = request.call else { return [] }
            switch call.type {
            case .update: return [(call.update.status.uuid, request.status, false)]
            case .subscribe:
                return call.subscribe.unacknowledgedUpdates.map { ($0.status.uuid, request.status, true) }
            default: return []
            }
        }
    }

    @Test func agentRestartWithWithheldAcksAnd503sLosesAndRepeatsNothing() async throws {
        for encoding in WireEncoding.allCases {
            let code = try await ExecutorUnderTest.run(encoding: encoding, checkpoint: true) { test in
                let agent = test.agent
                test.makeFIFO("finish-1")
                test.makeFIFO("finish-2")
                try await agent.launch(test.task("t1", "cat finish-1 > /dev/null"))
                try await agent.launch(test.task("t2", "cat finish-2 > /dev/null; exit 4"))
                try await test.waitForStates(["t1": .taskRunning, "t2": .taskRunning])
                // The agent stops acknowledging, then accepts no more updates (503).
                await agent.withholdAcknowledgements()
                await agent.rejectUpdates(true)
                try "x".write(toFile: test.path("finish-1"), atomically: false, encoding: .utf8)
                try await agent.waitUntil("a refused UPDATE for t1") { state in
                    state.requests.contains { $0.call?.type == .update && $0.status == 503 }
                }
                // The agent dies; t2 ends while it is down.
                try await agent.restart(.manual)
                try "x".write(toFile: test.path("finish-2"), atomically: false, encoding: .utf8)
                // It comes back: 503 to everything, then RECOVERING (UPDATE → 503) until we end it.
                try await agent.comeBack()
                await agent.rejectUpdates(false)
                await agent.recoverContainerizer(window: .untilEnded)
                try await agent.waitUntil("re-subscribed") { $0.subscriptions >= 2 && $0.executorStatus == .subscribed }
                await agent.endRecovery()
                await agent.releaseAcknowledgements()
                try await test.waitForStates(["t1": .taskFinished, "t2": .taskFailed])

                let state = await agent.state
                let t2 = state.updates(forTask: "t2").map(\.status.state)
                #expect(t2 == [.taskStarting, .taskRunning, .taskFailed], "\(encoding)")
                #expect(
                    state.updates(forTask: "t1").map(\.status.state) == [.taskStarting, .taskRunning, .taskFinished])
                #expect(state.updates.allSatisfy { $0.acknowledged }, "\(state.summary)")
                // Exactly once by uuid, and never sent again after its ACK (the agent flags that as a violation).
                #expect(Set(state.updates.map(\.uuid)).count == state.updates.count)
                let accepted = self.deliveries(state).filter { $0.status == 202 || $0.status == 200 }
                #expect(Set(accepted.map(\.uuid)) == Set(state.updates.map(\.uuid)))
                #expect(self.deliveries(state).contains { $0.viaSubscribe }, "the re-SUBSCRIBE carried updates")
                #expect(state.violations.isEmpty, "\(state.violations)")
                await agent.shutdown()
            }
            #expect(code == 0, "\(encoding)")
        }
    }

    @Test func withoutCheckpointingALostAgentKillsTasksAndExits() async throws {
        for encoding in WireEncoding.allCases {
            let code = try await ExecutorUnderTest.run(encoding: encoding, checkpoint: false) { test in
                test.makeFIFO("ready")
                try await test.agent.launch(test.task("orphan", "sleep 300 & echo $! > child.pid; echo > ready; wait"))
                _ = await readFIFO(test.path("ready"))
                try await test.waitForStates(["orphan": .taskRunning])
                await test.agent.dropStream()
                let child = Int32(
                    try String(contentsOfFile: test.path("child.pid"), encoding: .utf8)
                        .trimmingCharacters(in: .whitespacesAndNewlines))!
                #expect(await processExits(child), "task survived")
            }
            #expect(code == 0, "\(encoding)")
        }
    }

    @Test func withCheckpointingADroppedStreamIsResubscribedAndTasksKeepRunning() async throws {
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding, checkpoint: true) { test in
                test.makeFIFO("go")
                try await test.agent.launch(test.task("steady", "cat go > /dev/null; echo survived"))
                try await test.waitForStates(["steady": .taskRunning])
                await test.agent.dropStream()
                try await test.agent.waitUntil("re-subscribed") { $0.subscriptions == 2 && $0.hasOpenStream }
                try "go".write(toFile: test.path("go"), atomically: false, encoding: .utf8)
                try await test.waitForStates(["steady": .taskFinished])
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }

    @Test func updatesRefusedWith503AreRetriedInOrder() async throws {
        try await ExecutorUnderTest.run(encoding: .protobuf) { test in
            await test.agent.rejectUpdates(true)
            try await test.agent.launch(test.task("quick", "exit 0"))
            try await test.agent.waitUntil("two refused UPDATEs") { state in
                state.requests.filter { $0.call?.type == .update && $0.status == 503 }.count >= 2
            }
            await test.agent.rejectUpdates(false)
            try await test.waitForStates(["quick": .taskFinished])
            let states = await test.states(of: "quick")
            #expect(states == [.taskStarting, .taskRunning, .taskFinished])
            await assertNoViolations(test.agent)
            await test.agent.shutdown()
        }
    }
}
