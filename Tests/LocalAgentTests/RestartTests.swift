import Foundation
@testable import LocalAgent
import MesosCodec
import MesosProto
import NIOCore
import NIOEmbedded
import NIOHTTP1
import NIOPosix
import ProcessSupervision
import Testing

/// Agent restarts as an executor sees them: the stream breaks, connections are refused, then 503 until the agent recovers.
struct RestartTests {
    let configuration = testConfiguration(checkpoint: true)
    var calls: Calls { Calls(configuration: configuration) }

    @Test(arguments: WireEncoding.allCases)
    func checkpointedExecutorReSubscribesThroughARestart(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            let port = await agent.port
            try await agent.launch(agent.makeTask("acked"))
            try await agent.launch(agent.makeTask("pending"))
            try await agent.launch(agent.makeTask("forgotten"))
            let pending = calls.update("pending", .taskRunning)
            try await withConnection(port: port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), encoding)
                for _ in 0..<3 { _ = try await stream.nextEvent(.launch, encoding) }
                #expect(try await post(calls.update("acked", .taskRunning), encoding, port: port).status == 202)
                _ = try await stream.nextEvent(.acknowledged, encoding)

                try await agent.restart(.manual)
                // The stream ends without the terminating chunk; the port refuses connections.
                await #expect(throws: StreamEnd.abrupt) { try await stream.readEvent(encoding) }
            }
            await #expect(throws: (any Error).self) { try await withConnection(port: port) { _ in } }

            try await agent.comeBack()
            #expect(try await post(calls.subscribe(), encoding, port: port).status == 503)

            await agent.recoverContainerizer(window: .untilEnded)
            #expect(await agent.state.phase == .recovering)
            try await withConnection(port: port) { stream in
                // "pending" never had an ACK: it is re-sent; "forgotten" is not listed at all.
                let subscribe = calls.subscribe(
                    tasks: [agent.makeTask("pending")],
                    updates: [pending.update]
                )
                #expect(try await stream.subscribe(subscribe, encoding).status == 200)
                #expect(try await stream.nextEvent(encoding).type == .subscribed)
                #expect(try await stream.nextEvent(encoding).acknowledged.uuid == pending.update.status.uuid)

                #expect(try await post(calls.update("pending", .taskFinished), encoding, port: port).status == 503)
                #expect(try await post(calls.message("m"), encoding, port: port).status == 503)
                await agent.endRecovery()
                #expect(try await post(calls.update("pending", .taskFinished), encoding, port: port).status == 202)
                _ = try await stream.nextEvent(.acknowledged, encoding)
            }
            let state = await agent.state
            #expect(state.taskStates == ["acked": .taskRunning, "pending": .taskFinished, "forgotten": .taskLost])
            let lost = try #require(state.updates(forTask: "forgotten").first)
            #expect(lost.status.reason == .agentRestarted)
            #expect(lost.isFromAgent)
            #expect(state.violations.isEmpty)
        }
    }

    /// A dead agent handles nothing: a request it had read from a connection before it went down
    /// but not handled yet (a pipelining executor leaves several such) is not handled by the agent
    /// that comes back either, which would see, say, an UPDATE again after its predecessor
    /// acknowledged it. The same request on a connection of the new agent is handled.
    @Test func aRequestReadBeforeARestartIsNotHandledAfterIt() async throws {
        try await withLocalAgent(configuration) { agent in
            let stale = try #require(await agent.register(EmbeddedChannel()))
            try await agent.restart(.manual)
            try await agent.comeBack()
            await agent.recoverContainerizer(window: .untilEnded)
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: WireEncoding.json.contentType)
            headers.add(name: "Accept", value: WireEncoding.json.contentType)
            let request = ExecutorRequest(
                method: .POST, uri: "/api/v1/executor", headers: headers, body: try encoded(calls.subscribe(), .json))

            let staleReply = await agent.handle(request, version: .http1_1, connection: stale)
            guard case .close = staleReply else {
                Issue.record("a request of the agent before the restart was handled: \(staleReply)")
                return
            }
            #expect(await agent.state.subscriptions == 0)

            let fresh = try #require(await agent.register(EmbeddedChannel()))
            let freshReply = await agent.handle(request, version: .http1_1, connection: fresh)
            guard case .stream = freshReply else {
                Issue.record("SUBSCRIBE on a connection of the new agent: \(freshReply)")
                return
            }
            #expect(await agent.state.subscriptions == 1)
            #expect(await agent.state.violations.isEmpty)
        }
    }

    /// A child process started while the agent listens (between its fork and its exec it holds a copy
    /// of every descriptor, as the executor's own tasks do when the executor runs in a test process)
    /// must not keep the port listening once the agent is down, nor stop it listening again.
    @Test func aChildHoldingTheListeningSocketNeitherKeepsThePortOpenNorBlocksComingBack() async throws {
        try await withLocalAgent(testConfiguration(checkpoint: true)) { agent in
            let port = await agent.port
            let descriptor = try #require(listeningDescriptor(port: port), "no descriptor listens on \(port)")
            let holder = try spawnHolding(descriptor)
            var failure: (any Error)?
            do {
                try await agent.restart(.manual)
                await #expect(throws: (any Error).self) { try await withConnection(port: port) { _ in } }
                try await agent.comeBack()
                await agent.recoverContainerizer(window: .untilEnded)
                await agent.endRecovery()
                #expect(try await post(calls.heartbeat(), .json, port: port).status == 202)
            } catch {
                failure = error
            }
            holder.signal(SIGKILL)
            #expect(await holder.wait() == .signaled(SIGKILL))
            if let failure { throw failure }
        }
    }

    /// The descriptor of this process's socket listening on TCP `port`.
    private func listeningDescriptor(port: Int) -> CInt? {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        for descriptor in entries.compactMap({ CInt($0) }) {
            var listening: CInt = 0
            var size = socklen_t(MemoryLayout<CInt>.size)
            guard getsockopt(descriptor, SOL_SOCKET, SO_ACCEPTCONN, &listening, &size) == 0, listening == 1 else {
                continue
            }
            var address = sockaddr_in()
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let named = withUnsafeMutablePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
            }
            if named == 0, address.sin_family == sa_family_t(AF_INET), Int(UInt16(bigEndian: address.sin_port)) == port
            {
                return descriptor
            }
        }
        return nil
    }

    /// A `sleep` that holds `descriptor` and nothing else of this process's: a child holding more
    /// (as one started by a bare `posix_spawn` does) keeps every other test's pipes and sockets open
    /// while it lives, and a test waiting for a pipe's reader to go never sees it go.
    private func spawnHolding(_ descriptor: CInt) throws -> ChildProcess {
        try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/sleep", arguments: ["sleep", "3600"], environment: [],
                fileDescriptors: [(descriptor, 3)]))
    }

    @Test func partitionAwareFrameworkGetsTaskDropped() async throws {
        let configuration = testConfiguration(checkpoint: true) { $0.frameworkCapabilities = [.partitionAware] }
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1"))
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .protobuf)
                _ = try await stream.nextEvent(.launch, .protobuf)
            }
            try await agent.restart(.immediately)
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .protobuf)
                _ = try await stream.nextEvent(.subscribed, .protobuf)
            }
            #expect(await agent.state.taskStates["t1"] == .taskDropped)
        }
    }

    @Test func withoutCheckpointingTheFrameworkIsGone() async throws {
        try await withLocalAgent(testConfiguration(checkpoint: false)) { agent in
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .json)
                _ = try await stream.nextEvent(.json)
            }
            try await agent.restart(.immediately)
            #expect(await agent.state.phase == .running)
            let response = try await post(calls.subscribe(), .json, port: agent.port)
            #expect(response.status == 400)
            #expect(response.text == "Framework cannot be found")
        }
    }

    @Test func recoveryWindowEndsByItselfAndDestroysAnExecutorThatDidNotReturn() async throws {
        try await withLocalAgent(configuration) { agent in
            try await agent.launch(agent.makeTask("t1"))
            try await withConnection(port: agent.port) { stream in
                _ = try await stream.subscribe(calls.subscribe(), .json)
                _ = try await stream.nextEvent(.launch, .json)
            }
            try await agent.restart(
                RestartPlan(comeBack: true, recoverContainerizer: true, window: .duration(.milliseconds(20))))
            let state = try await agent.waitUntil("the window to end") { $0.phase == .running }
            #expect(state.executorStatus == .terminated)
            #expect(state.taskStates["t1"] == .taskLost)
            #expect(state.violations.map(\.kind) == [.missedReregistration])
            let response = try await post(calls.subscribe(), .json, port: agent.port)
            #expect(response.text == "Executor cannot be found")
        }
    }

    @Test func heldAgentRunsUntilCancelled() async throws {
        let agent = LocalAgent(configuration: configuration)
        try await agent.bind()
        let port = await agent.port
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await agent.run() }
            let response = try await post(calls.heartbeat(), .json, port: port)
            #expect(response.status == 202)
            group.cancelAll()
        }
        await #expect(throws: (any Error).self) { try await withConnection(port: port) { _ in } }
    }

    /// An agent that dies as it stores an executor MESSAGE: the MESSAGE is recorded, its connection
    /// ends without an answer and the stream breaks; the same MESSAGE sent to the agent that comes
    /// back (once everything the dead one had open is closed) is recorded again, in its next life.
    @Test(arguments: WireEncoding.allCases)
    func anAgentCanDieAtTheNextMessageBeforeAnsweringIt(encoding: WireEncoding) async throws {
        try await withLocalAgent(configuration) { agent in
            let port = await agent.port
            try await withConnection(port: port) { stream in
                #expect(try await stream.subscribe(calls.subscribe(), encoding).status == 200)
                _ = try await stream.nextEvent(.subscribed, encoding)
                #expect(try await post(calls.message("answered"), encoding, port: port).status == 202)

                try await agent.restart(atNextMessage: .manual)
                #expect(await agent.state.diesAtNextMessage)
                await #expect(throws: StreamEnd.abrupt) {
                    _ = try await post(calls.message("cut"), encoding, port: port)
                }
                await #expect(throws: StreamEnd.abrupt) { try await stream.readEvent(encoding) }
            }
            let down = await agent.state
            #expect(down.phase == .down)
            #expect(!down.diesAtNextMessage)
            #expect(down.messages == [Data("answered".utf8), Data("cut".utf8)])
            #expect(down.messagesAtRestarts == [2])

            try await agent.comeBack()
            await agent.recoverContainerizer(window: .untilEnded)
            try await withConnection(port: port) { stream in
                #expect(try await stream.subscribe(calls.subscribe(), encoding).status == 200)
                _ = try await stream.nextEvent(.subscribed, encoding)
                await agent.endRecovery()
                #expect(try await post(calls.message("cut"), encoding, port: port).status == 202)
            }
            let state = await agent.state
            #expect(state.messages.count == 3)
            #expect((0..<3).map(state.life(ofMessage:)) == [0, 0, 1])
            #expect(state.violations.isEmpty)
        }
    }
}
