import AgentConnection
import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import NIOCore
import Testing

/// The agent client against a real agent stand-in on loopback: every call goes over HTTP.
@Suite(.timeLimit(.minutes(2)))
struct AgentClientTests {
    private func clientConfiguration(
        _ agent: LocalAgent, encoding: WireEncoding = .protobuf, token: String? = nil
    ) async -> AgentClientConfiguration {
        AgentClientConfiguration(
            endpoint: AgentEndpoint(hostAndPort: await agent.endpoint), encoding: encoding, authenticationToken: token)
    }

    private func call(_ type: Mesos_V1_Executor_Call.TypeEnum, _ agent: LocalAgent) -> Mesos_V1_Executor_Call {
        var call = Mesos_V1_Executor_Call()
        call.type = type
        call.frameworkID.value = agent.configuration.frameworkID
        call.executorID.value = agent.configuration.executorID
        if type == .subscribe { call.subscribe = .init() }
        return call
    }

    private func update(_ agent: LocalAgent, task: String, uuid: UInt8) -> Mesos_V1_Executor_Call {
        var call = call(.update, agent)
        call.update.status.taskID.value = task
        call.update.status.state = .taskRunning
        call.update.status.source = .executor
        call.update.status.executorID.value = agent.configuration.executorID
        // A version-4 uuid, as the agent insists on.
        var bytes = [uuid] + [UInt8](repeating: 0, count: 15)
        bytes[6] = 0x40
        bytes[8] = 0x80
        call.update.status.uuid = Data(bytes)
        return call
    }

    /// Both connections reach an agent named by an IPv4 or IPv6 address (connected to as it is) or
    /// by a host name (resolved).
    @Test(arguments: [("127.0.0.1", "127.0.0.1"), ("::1", "[::1]"), ("127.0.0.1", "localhost")])
    func theAgentIsReachedByAddressOrName(listening: String, named: String) async throws {
        var configuration = LocalAgentConfiguration()
        configuration.host = listening
        try await withLocalAgent(configuration) { agent in
            let endpoint = AgentEndpoint(hostAndPort: "\(named):\(await agent.port)")
            try await withAgentClient(AgentClientConfiguration(endpoint: endpoint)) { client in
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                #expect(try await events.next()?.type == .subscribed)
                try await agent.launch(agent.makeTask("t1"))
                #expect(try await events.next()?.type == .launch)
                let update = update(agent, task: "t1", uuid: 9)
                try await client.send(update)
                #expect(try await events.next()?.acknowledged.uuid == update.update.status.uuid)
            }
        }
    }

    @Test(arguments: WireEncoding.allCases)
    func subscribeOpensTheEventStreamAndAnUpdateIsAcknowledgedOnIt(encoding: WireEncoding) async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent, encoding: encoding)) { client in
                let stream = try await client.subscribe(call(.subscribe, agent))
                var events = stream.makeAsyncIterator()
                let subscribed = try #require(try await events.next())
                #expect(subscribed.type == .subscribed)
                #expect(subscribed.subscribed.frameworkInfo.id.value == agent.configuration.frameworkID)
                try await agent.launch(agent.makeTask("t1"))
                let launch = try #require(try await events.next())
                #expect(launch.launch.task.taskID.value == "t1")

                let update = update(agent, task: "t1", uuid: 7)
                try await client.send(update)
                let acknowledged = try #require(try await events.next())
                #expect(acknowledged.type == .acknowledged)
                #expect(acknowledged.acknowledged.uuid == update.update.status.uuid)
                #expect(await agent.state.updates.map(\.uuid) == [update.update.status.uuid])
                #expect(await agent.state.requests.allSatisfy { $0.contentType == encoding.contentType })
                #expect(await agent.state.violations.isEmpty)
            }
        }
    }

    /// A SUBSCRIBE begun before anything awaits it reaches the agent at once, and the subscribe()
    /// of the same call takes it over: one connection, one subscription, its stream the one read.
    @Test(arguments: WireEncoding.allCases)
    func aSubscribeBegunEarlyIsSentAtOnceAndTakenOver(encoding: WireEncoding) async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent, encoding: encoding)) { client in
                client.beginSubscribe(call(.subscribe, agent))
                _ = try await agent.waitUntil("the SUBSCRIBE begun early arrived") { $0.subscriptions == 1 }
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                #expect(try await events.next()?.type == .subscribed)
                try await agent.launch(agent.makeTask("t1"))
                #expect(try await events.next()?.launch.task.taskID.value == "t1")
                try await client.send(update(agent, task: "t1", uuid: 3))
                #expect(try await events.next()?.type == .acknowledged)
                #expect(await agent.state.subscriptions == 1)
                #expect(await agent.state.violations.isEmpty)
            }
        }
    }

    /// A subscribe() of another call than the one begun does not take it over: the begun one is
    /// closed first, and the stream returned is the new subscription's.
    @Test func aSubscribeBegunForAnotherCallIsClosedBeforeTheOneAskedFor() async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent)) { client in
                var other = call(.subscribe, agent)
                other.subscribe.unacknowledgedTasks = [agent.makeTask("earlier")]
                client.beginSubscribe(other)
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                #expect(try await events.next()?.type == .subscribed)
                #expect(await agent.state.subscriptions == 2)
                try await agent.launch(agent.makeTask("t1"))
                #expect(try await events.next()?.launch.task.taskID.value == "t1")
            }
        }
    }

    @Test func aSubscribeBegunWhileTheAgentIsDownFailsAndCanBeTriedAgain() async throws {
        try await withLocalAgent { agent in
            await agent.goDown()
            var configuration = await clientConfiguration(agent)
            configuration.connectTimeout = .seconds(1)
            try await withAgentClient(configuration) { client in
                client.beginSubscribe(call(.subscribe, agent))
                let error = try #require(await failure { _ = try await client.subscribe(call(.subscribe, agent)) })
                #expect(error.isRetryable)
                #expect(error.status == nil)
            }
        }
    }

    @Test func theTokenGoesWithEveryCallAndAWrongOneIsRefusedForGood() async throws {
        var configuration = LocalAgentConfiguration()
        configuration.authenticationToken = "secret"
        try await withLocalAgent(configuration) { agent in
            try await withAgentClient(await clientConfiguration(agent, token: "wrong")) { client in
                let error = try #require(await failure { _ = try await client.subscribe(call(.subscribe, agent)) })
                #expect(error.status == 401)
                #expect(!error.isRetryable)
                #expect("\(error)".contains("401"))
            }
            try await withAgentClient(await clientConfiguration(agent, token: "secret")) { client in
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                #expect(try await events.next()?.type == .subscribed)
                try await client.send(call(.heartbeat, agent))
            }
        }
    }

    /// Over a unix socket too, whether SUBSCRIBE was begun early (its request then written by the
    /// calling thread itself) or not.
    @Test(arguments: [false, true])
    func theAgentReachedOverAUnixSocket(begunEarly: Bool) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("agent-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let socket = directory.appendingPathComponent("agent.sock").path
        var configuration = LocalAgentConfiguration()
        configuration.unixSocketPath = socket
        try await withLocalAgent(configuration) { agent in
            let endpoint = AgentEndpoint(hostAndPort: "localhost", transport: .unixSocket(socket))
            try await withAgentClient(AgentClientConfiguration(endpoint: endpoint)) { client in
                if begunEarly { client.beginSubscribe(call(.subscribe, agent)) }
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                #expect(try await events.next()?.type == .subscribed)
                try await agent.launch(agent.makeTask("t1"))
                #expect(try await events.next()?.launch.task.taskID.value == "t1")
                #expect(await agent.state.subscriptions == 1)
            }
        }
    }

    @Test func anAgentThatIsDownCanBeTriedAgain() async throws {
        try await withLocalAgent { agent in
            await agent.goDown()
            var configuration = await clientConfiguration(agent)
            // A refused connection is retried until the connect timeout: keep the test short.
            configuration.connectTimeout = .seconds(1)
            try await withAgentClient(configuration) { client in
                let subscribe = try #require(await failure { _ = try await client.subscribe(call(.subscribe, agent)) })
                #expect(subscribe.isRetryable)
                #expect(subscribe.status == nil)
                let send = try #require(await failure { try await client.send(call(.heartbeat, agent)) })
                #expect(send.isRetryable)
                #expect("\(send)".contains("HEARTBEAT could not reach the agent"))
            }
        }
    }

    @Test func anUpdateDuringRecoveryGets503AndCanBeTriedAgain() async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent)) { client in
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                try await agent.launch(agent.makeTask("t"))
                while try await events.next()?.type != .launch {}
                await agent.rejectUpdates(true)
                let error = try #require(await failure { try await client.send(update(agent, task: "t", uuid: 1)) })
                #expect(error.status == 503)
                #expect(error.isRetryable)
                await agent.rejectUpdates(false)
                try await client.send(update(agent, task: "t", uuid: 1))
                #expect(await agent.state.updates(forTask: "t").count == 1)
            }
        }
    }

    @Test func aDroppedStreamThrowsAndCanBeTriedAgain() async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent)) { client in
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                #expect(try await events.next()?.type == .subscribed)
                await agent.dropStream()
                let error = try #require(await failure { while try await events.next() != nil {} })
                #expect(error.isRetryable)
            }
        }
    }

    @Test func aStreamTheAgentClosesEndsCleanly() async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent)) { client in
                _ = try await client.subscribe(call(.subscribe, agent))
                await agent.shutdown()
                // A terminating executor's SUBSCRIBE gets SHUTDOWN and the stream's end.
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                #expect(try await events.next()?.type == .shutdown)
                #expect(try await events.next() == nil)
            }
        }
    }

    @Test func aGarbledRecordBreaksTheStream() async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent)) { client in
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                #expect(try await events.next()?.type == .subscribed)
                #expect(await agent.injectRawStreamBytes(Array("12x\nnot a record".utf8)))
                let error = try #require(await failure { _ = try await events.next() })
                #expect(error.isRetryable)
                #expect("\(error)".hasPrefix("event stream lost"))
            }
        }
    }

    @Test func aCallMissingARequiredFieldIsNeverSent() async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent)) { client in
                var call = call(.update, agent)
                call.update.status.state = .taskRunning
                let error = try #require(await failure { try await client.send(call) })
                #expect(!error.isRetryable)
                #expect("\(error)".hasPrefix("refusing to send an invalid UPDATE"))
                #expect(await agent.state.requests.isEmpty)
            }
        }
    }

    /// Calls made at once go over the one calls connection, pipelined, and each gets its own
    /// answer (libprocess answers a connection's requests in order, as the local agent does).
    @Test func callsMadeAtOnceArePipelinedAndEachIsAnswered() async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent)) { client in
                var events = try await client.subscribe(call(.subscribe, agent)).makeAsyncIterator()
                let tasks = (0..<40).map { "t\($0)" }
                for task in tasks { try await agent.launch(agent.makeTask(task)) }
                var launched = 0
                while launched < tasks.count, let event = try await events.next() {
                    if event.type == .launch { launched += 1 }
                }
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for (index, task) in tasks.enumerated() {
                        group.addTask {
                            try await client.send(update(agent, task: task, uuid: UInt8(index + 1)))
                        }
                    }
                    try await group.waitForAll()
                }
                for task in tasks { #expect(await agent.state.updates(forTask: task).count == 1, "\(task)") }
                // A refusal still reaches the call it answers, and the connection goes on serving.
                await agent.rejectUpdates(true)
                let refused = try #require(
                    await failure { try await client.send(update(agent, task: "t0", uuid: 100)) })
                #expect(refused.status == 503)
                await agent.rejectUpdates(false)
                try await client.send(call(.heartbeat, agent))
            }
        }
    }

    /// A call made before a SUBSCRIBE (an UPDATE handed out while the previous stream was alive)
    /// is never written after it: it fails unsent and retryable, and the agent sees only the
    /// SUBSCRIBE; a call made after the SUBSCRIBE goes through.
    @Test func aCallMadeBeforeASubscribeIsNotSentAfterIt() async throws {
        try await withLocalAgent { agent in
            try await withAgentClient(await clientConfiguration(agent)) { client in
                try await agent.launch(agent.makeTask("t1"))
                let before = client.callEpoch
                _ = try await client.subscribe(call(.subscribe, agent))
                let stale = try #require(
                    await failure { try await client.send(update(agent, task: "t1", uuid: 7), madeIn: before) })
                #expect(stale.isRetryable)
                #expect("\(stale)".contains("not sent: the executor has subscribed again"), "\(stale)")
                #expect(await agent.state.requests.map(\.call?.type) == [.subscribe])
                try await client.send(update(agent, task: "t1", uuid: 8), madeIn: client.callEpoch)
                #expect(await agent.state.updates.count == 1)
                #expect(await agent.state.violations.isEmpty)
            }
        }
    }

    /// An agent that takes the connection and never answers: the call fails once its timeout has
    /// passed (retryable), and the next call opens a new connection.
    @Test func aCallTheAgentNeverAnswersTimesOutAndTheNextOneReconnects() async throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        #expect(listener >= 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 16) == 0
                    && getsockname(listener, pointer, &length) == 0
            }
        }
        #expect(bound)
        let port = Int(UInt16(bigEndian: address.sin_port))
        var configuration = AgentClientConfiguration(endpoint: AgentEndpoint(hostAndPort: "127.0.0.1:\(port)"))
        // What is tested is the timeout firing: the kernel completes the handshake and nothing answers.
        configuration.callTimeout = .milliseconds(200)
        var heartbeat = Mesos_V1_Executor_Call()
        heartbeat.type = .heartbeat
        heartbeat.frameworkID.value = "f"
        heartbeat.executorID.value = "e"
        try await withAgentClient(configuration) { client in
            for _ in 0..<2 {
                let error = try #require(await failure { try await client.send(heartbeat) })
                #expect(error.isRetryable)
                #expect("\(error)".contains("HEARTBEAT could not reach the agent: no answer within"), "\(error)")
            }
        }
        // Two connections were made: the first was closed when its call timed out.
        var accepted = 0
        let flags = fcntl(listener, F_GETFL)
        _ = fcntl(listener, F_SETFL, flags | O_NONBLOCK)
        while case let fd = accept(listener, nil, nil), fd >= 0 {
            accepted += 1
            close(fd)
        }
        #expect(accepted == 2)
    }
}

/// The error a call failed with, or nil when it succeeded (any error but an AgentError is a test failure).
func failure(_ body: () async throws -> Void) async -> AgentError? {
    do {
        try await body()
        return nil
    } catch let error as AgentError {
        return error
    } catch {
        Issue.record("not an AgentError: \(error)")
        return nil
    }
}
