import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import Testing

/// The SUBSCRIBE stream and what flows on it (`Slave::subscribe`, `Slave::statusUpdate`, the events the agent generates).
struct SubscribeStreamTests {
    let configuration = testConfiguration()
    var calls: Calls { Calls(configuration: configuration) }

    @Test(arguments: WireEncoding.allCases)
    func subscribedThenQueuedLaunch(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1", data: Array("payload".utf8)))
            try await withConnection(port: agent.port) { stream in
                let head = try await stream.subscribe(calls.subscribe(), encoding)
                #expect(head.status == 200)
                #expect(head.header("Content-Type") == encoding.contentType)
                #expect(head.header("Transfer-Encoding") == "chunked")
                #expect(head.header("Content-Length") == nil)

                let subscribed = try await stream.nextEvent(encoding)
                #expect(subscribed.type == .subscribed)
                #expect(subscribed.subscribed.executorInfo.executorID.value == configuration.executorID)
                #expect(subscribed.subscribed.frameworkInfo.id.value == configuration.frameworkID)
                #expect(subscribed.subscribed.agentInfo.id.value == configuration.agentID)
                #expect(subscribed.subscribed.agentInfo.port == Int32(await agent.port))
                #expect(subscribed.subscribed.containerID.value == configuration.containerID)

                let launch = try await stream.nextEvent(encoding)
                #expect(launch.type == .launch)
                #expect(launch.launch.task.taskID.value == "t1")
                #expect(launch.launch.task.agentID.value == configuration.agentID)
                #expect(launch.launch.task.executor.executorID.value == configuration.executorID)
                #expect(launch.launch.task.data == Data("payload".utf8))
            }
            #expect(await agent.state.violations.isEmpty)
        }
    }

    @Test(arguments: ["*/*", nil] as [String?])
    func defaultAcceptIsJSON(accept: String?) async throws {
        try await withLocalAgent(configuration) { agent in
            try await withConnection(port: agent.port) { stream in
                try await stream.request(
                    contentType: WireEncoding.protobuf.contentType,
                    accept: accept,
                    body: encoded(calls.subscribe(), .protobuf)
                )
                let head = try await stream.readHead()
                #expect(head.status == 200)
                #expect(head.header("Content-Type") == "application/json")
                #expect(try await stream.nextEvent(.json).type == .subscribed)
            }
        }
    }

    @Test func libprocessPathAndLaunchesAfterSubscribe() async throws {
        try await withLocalAgent(configuration) { agent in
            try await withConnection(port: agent.port) { stream in
                try await stream.request(
                    path: "/slave(1)/api/v1/executor",
                    contentType: "application/x-protobuf",
                    accept: "application/x-protobuf",
                    body: encoded(calls.subscribe(), .protobuf)
                )
                #expect(try await stream.readHead().status == 200)
                #expect(try await stream.nextEvent(.protobuf).type == .subscribed)
                try await agent.launch(agent.makeTask("t1"))
                #expect(try await stream.nextEvent(.protobuf).launch.task.taskID.value == "t1")
                var group = Mesos_V1_TaskGroupInfo()
                group.tasks = [agent.makeTask("g1"), agent.makeTask("g2")]
                try await agent.launchGroup(group)
                let launchGroup = try await stream.nextEvent(.protobuf)
                #expect(launchGroup.type == .launchGroup)
                #expect(launchGroup.launchGroup.taskGroup.tasks.map(\.taskID.value) == ["g1", "g2"])
            }
        }
    }

    @Test(arguments: WireEncoding.allCases)
    func updateIsAcknowledgedAndDuplicateReAcknowledgedNotReStored(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1"))
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), encoding)
                _ = try await stream.nextEvent(.launch, encoding)

                let uuid = newUUID()
                let response = try await post(calls.update("t1", .taskRunning, uuid: uuid), encoding, port: agent.port)
                #expect(response.status == 202)
                #expect(response.header("Content-Length") == "0")
                let ack = try await stream.nextEvent(encoding)
                #expect(ack.type == .acknowledged)
                #expect(ack.acknowledged.taskID.value == "t1")
                #expect(ack.acknowledged.uuid == uuid)

                #expect(
                    try await post(calls.update("t1", .taskRunning, uuid: uuid), encoding, port: agent.port).status
                        == 202)
                #expect(try await stream.nextEvent(encoding).acknowledged.uuid == uuid)

                let state = await agent.state
                #expect(state.updates.count == 1)
                #expect(state.update(uuid: uuid)?.duplicates == 1)
                #expect(state.update(uuid: uuid)?.acknowledged == true)
                #expect(state.taskStates["t1"] == .taskRunning)
                #expect(state.violations.map(\.kind) == [.updateAfterAcknowledgement])
            }
        }
    }

    @Test func updatesForUnknownTasksOrForeignAgentsAreNeverAcknowledged() async throws {
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1"))
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .protobuf)
                _ = try await stream.nextEvent(.launch, .protobuf)
                #expect(
                    try await post(calls.update("unknown", .taskRunning), .protobuf, port: agent.port).status == 202)
                var foreign = calls.status("t1", .taskRunning)
                foreign.agentID.value = "another-agent"
                #expect(try await post(calls.update(foreign), .protobuf, port: agent.port).status == 202)
                // The next ACK on the stream is for this update: the two before got none.
                let uuid = newUUID()
                _ = try await post(calls.update("t1", .taskFinished, uuid: uuid), .protobuf, port: agent.port)
                #expect(try await stream.nextEvent(.protobuf).acknowledged.uuid == uuid)
                // After the terminal update: dropped, but acknowledged.
                let late = newUUID()
                _ = try await post(calls.update("t1", .taskRunning, uuid: late), .protobuf, port: agent.port)
                #expect(try await stream.nextEvent(.protobuf).acknowledged.uuid == late)
                let state = await agent.state
                #expect(state.updates.map(\.uuid) == [uuid])
                #expect(state.violations.map(\.kind) == [.updateForUnknownTask, .foreignAgentID, .updateAfterTerminal])
            }
        }
    }

    @Test func withheldAcknowledgementsAndRejectedUpdates() async throws {
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1"))
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .json)
                _ = try await stream.nextEvent(.launch, .json)
                await agent.rejectUpdates(true)
                #expect(try await post(calls.update("t1", .taskRunning), .json, port: agent.port).status == 503)
                await agent.rejectUpdates(false)
                await agent.withholdAcknowledgements()
                let uuid = newUUID()
                #expect(
                    try await post(calls.update("t1", .taskRunning, uuid: uuid), .json, port: agent.port).status == 202)
                try await agent.waitUntil("the update is stored") { $0.update(uuid: uuid) != nil }
                #expect(await agent.state.update(uuid: uuid)?.acknowledged == false)
                await agent.releaseAcknowledgements()
                #expect(try await stream.nextEvent(.json).acknowledged.uuid == uuid)
                #expect(await agent.state.updates.count == 1)
            }
        }
    }

    @Test func killMessageAndShutdown() async throws {
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1"))
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .protobuf)
                _ = try await stream.nextEvent(.launch, .protobuf)
                var policy = Mesos_V1_KillPolicy()
                policy.gracePeriod.nanoseconds = 1_000_000_000
                await agent.kill(taskID: "t1", killPolicy: policy)
                let kill = try await stream.nextEvent(.protobuf)
                #expect(kill.type == .kill)
                #expect(kill.kill.taskID.value == "t1")
                #expect(kill.kill.killPolicy.gracePeriod.nanoseconds == 1_000_000_000)

                await agent.sendMessage(Data("to executor".utf8))
                #expect(try await stream.nextEvent(.protobuf).message.data == Data("to executor".utf8))
                #expect(try await post(calls.message("to framework"), .protobuf, port: agent.port).status == 202)
                #expect(await agent.state.messages == [Data("to framework".utf8)])

                await agent.shutdown()
                #expect(try await stream.nextEvent(.protobuf).type == .shutdown)
            }
            // A terminating executor that subscribes again gets just SHUTDOWN and a cleanly closed stream.
            try await withConnection(port: agent.port) { stream in
                let head = try await stream.subscribe(calls.subscribe(), .protobuf)
                #expect(head.status == 200)
                #expect(try await stream.readEventsUntilEnd(.protobuf).map(\.type) == [.shutdown])
            }
        }
    }

    @Test func killBeforeDeliveryIsAnsweredByTheAgent() async throws {
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1"))
            await agent.kill(taskID: "t1")
            let state = await agent.state
            #expect(state.taskStates["t1"] == .taskKilled)
            #expect(state.updates.first?.status.reason == .taskKilledDuringLaunch)
            #expect(state.events.isEmpty)
            // Its only task is gone, so the executor is shut down when it subscribes (MESOS-8411).
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .json)
                #expect(try await stream.readEventsUntilEnd(.json).map(\.type) == [.shutdown])
            }
        }
    }

    @Test func secondSubscribeClosesTheFirstStreamCleanly() async throws {
        try await withLocalAgent(configuration) { agent in
            try await withConnection(port: agent.port) { first in
                _ = try await first.subscribe(calls.subscribe(), .json)
                #expect(try await first.nextEvent(.json).type == .subscribed)
                try await withConnection(port: agent.port) { second in
                    _ = try await second.subscribe(calls.subscribe(), .protobuf)
                    #expect(try await second.nextEvent(.protobuf).type == .subscribed)
                    #expect(try await first.readEventsUntilEnd(.json).isEmpty)
                    #expect(try await first.readsEOF())
                }
            }
            let state = await agent.state
            #expect(state.subscriptions == 2)
            #expect(state.violations.map(\.kind) == [.subscribeWhileSubscribed])
        }
    }

    @Test func droppedStreamEndsWithoutTerminatingChunk() async throws {
        try await withLocalAgent(configuration) { agent in
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .json)
                _ = try await stream.nextEvent(.json)
                await agent.dropStream()
                await #expect(throws: StreamEnd.abrupt) { try await stream.readEvent(.json) }
            }
            #expect(await agent.state.hasOpenStream == false)
            #expect(await agent.state.executorStatus == .subscribed)
            // A re-subscription after the drop is not a violation.
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .json)
                #expect(try await stream.nextEvent(.json).type == .subscribed)
            }
            #expect(await agent.state.violations.isEmpty)
        }
    }

    @Test func heartbeatEventsArriveAtTheConfiguredInterval() async throws {
        let configuration = testConfiguration { $0.heartbeatInterval = .milliseconds(20) }
        try await withLocalAgent(configuration) { agent in
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .protobuf)
                #expect(try await stream.nextEvent(.protobuf).type == .subscribed)
                #expect(try await stream.nextEvent(.protobuf).type == .heartbeat)
                #expect(try await stream.nextEvent(.protobuf).type == .heartbeat)
            }
        }
    }

    @Test func requestPipelinedOnTheSubscribeConnectionIsReportedAndNeverAnswered() async throws {
        try await withLocalAgent(configuration) { agent in
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .json)
                _ = try await stream.nextEvent(.json)
                try await stream.request(contentType: "application/json", body: encoded(calls.heartbeat(), .json))
                try await agent.waitUntil("the violation") { !$0.violations.isEmpty }
                await agent.sendMessage(Data("next".utf8))
                // The stream goes on; no response was interleaved.
                #expect(try await stream.nextEvent(.json).type == .message)
            }
            #expect(await agent.state.violations.map(\.kind) == [.requestOnSubscribeConnection])
        }
    }

    @Test func unixDomainSocket() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString).sock").path
        let configuration = testConfiguration { $0.unixSocketPath = path }
        try await withLocalAgent(configuration) { agent in
            #expect(await agent.environment()["MESOS_DOMAIN_SOCKET"] == path)
            try await withConnection(port: 0, unixSocketPath: path) { stream in
                try await stream.request(
                    path: "/slave(1)/api/v1/executor",
                    contentType: "application/x-protobuf",
                    accept: "application/x-protobuf",
                    body: encoded(calls.subscribe(), .protobuf)
                )
                #expect(try await stream.readHead().status == 200)
                #expect(try await stream.nextEvent(.protobuf).type == .subscribed)
            }
        }
    }

    @Test func waitUntilTimesOutWithASummary() async throws {
        try await withLocalAgent(configuration) { agent in
            let error = await #expect(throws: LocalAgentError.self) {
                try await agent.waitUntil("a subscription", timeout: .milliseconds(50)) { $0.subscriptions > 0 }
            }
            #expect(error?.isTimedOut == true)
            #expect(error?.description.contains("a subscription") == true)
        }
    }
}
