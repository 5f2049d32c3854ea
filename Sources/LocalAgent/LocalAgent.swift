public import Foundation
import MesosCodec
public import MesosProto
public import NIOCore
import NIOHTTP1
import NIOPosix

/// A stand-in for a Mesos agent's executor endpoint (`POST /api/v1/executor`), faithful to how the
/// real agent answers, with knobs for tests and a record of everything it saw.
///
/// Prefer ``withLocalAgent(_:isolation:_:)``; to hold one yourself, call ``bind()`` and then run
/// ``run()`` in a child task for as long as the agent should serve.
public actor LocalAgent {
    /// What this agent pretends to be.
    public nonisolated let configuration: LocalAgentConfiguration
    let eventLoopGroup: any EventLoopGroup
    var machine: AgentStateMachine
    let waiters = WaiterRegistry()

    var streams: [Int: EventStreamSink] = [:]
    var connections: [Int: any Channel] = [:]
    /// Accepted connections not handed to a server yet.
    let accepted = AcceptedConnections()
    var nextConnectionID = 0
    var listeners: [ListeningSocket] = []
    /// What an agent that died handling a request began to close (``restart(atNextMessage:)``).
    var dying: [EventLoopFuture<Void>] = []
    /// How an agent set to die at the next MESSAGE comes back.
    var comebackAfterDying: RestartPlan?
    var boundPort: Int?
    let commands: AsyncStream<ServerCommand>
    let commandSink: AsyncStream<ServerCommand>.Continuation
    var isRunning = false
    var publishedFiles: [String: String] = [:]
    var fileDownloads: [String: Int] = [:]

    /// An agent that is not listening yet; call ``bind()``. Uses NIO's shared event loops by default.
    public init(
        configuration: LocalAgentConfiguration = LocalAgentConfiguration(),
        eventLoopGroup: (any EventLoopGroup)? = nil
    ) {
        self.configuration = configuration
        self.eventLoopGroup = eventLoopGroup ?? MultiThreadedEventLoopGroup.singleton
        self.machine = AgentStateMachine(configuration: configuration)
        (self.commands, self.commandSink) = AsyncStream.makeStream(of: ServerCommand.self)
    }

    // MARK: Observation

    /// Everything seen so far.
    public var state: LocalAgentState { machine.observed }

    /// The TCP port, once bound.
    public var port: Int { boundPort ?? 0 }

    /// `host:port`, the value of `MESOS_AGENT_ENDPOINT`.
    public var endpoint: String { "\(configuration.host):\(port)" }

    /// Waits until `predicate` holds for the observed state, re-checking after every change.
    /// Throws ``LocalAgentError/timedOut(_:)`` with a summary of what was seen.
    @discardableResult
    public func waitUntil(
        _ description: String = "the condition",
        timeout: Duration = .seconds(60),
        _ predicate: @escaping @Sendable (LocalAgentState) -> Bool
    ) async throws -> LocalAgentState {
        if predicate(machine.observed) { return machine.observed }
        let id = waiters.makeID()
        return try await withThrowingTaskGroup(of: LocalAgentState.self) { group in
            group.addTask { try await self.waitForever(id, predicate) }
            group.addTask {
                try await Task.sleep(for: timeout)
                let summary = await self.state.summary
                throw LocalAgentError.timedOut("after \(timeout) waiting for \(description); saw:\n\(summary)")
            }
            defer { group.cancelAll() }
            guard let state = try await group.next() else { throw CancellationError() }
            return state
        }
    }

    private func waitForever(
        _ id: Int,
        _ predicate: @escaping @Sendable (LocalAgentState) -> Bool
    ) async throws -> LocalAgentState {
        let waiters = self.waiters
        while true {
            if predicate(machine.observed) { return machine.observed }
            // Read with the check, on the actor: the registration below runs off it (see
            // `WaiterRegistry.generation`), and a change announced in between makes it answer
            // "check again".
            let generation = waiters.generation
            let satisfying = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation {
                    (continuation: CheckedContinuation<LocalAgentState?, any Error>) in
                    waiters.add(id, since: generation, predicate: predicate, continuation: continuation)
                }
            } onCancel: {
                waiters.cancel(id)
            }
            if let satisfying { return satisfying }
        }
    }

    /// Waits (without a time limit; until cancelled) until the agent has observed something past
    /// `mark`; then ``observations(since:)`` says what. Unlike ``waitUntil(_:timeout:_:)`` no
    /// copy of the state is handed over, so a follower that keeps up with every change does not
    /// make the agent copy all it has observed on each one.
    public func waitForObservations(after mark: ObservationMark) async throws {
        let id = waiters.makeID()
        let waiters = self.waiters
        while true {
            if ObservationMark(machine.observed) != mark { return }
            let generation = waiters.generation
            let changed = try await withTaskCancellationHandler {
                try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
                    waiters.add(
                        id, since: generation, predicate: { ObservationMark($0) != mark }, continuation: continuation)
                }
            } onCancel: {
                waiters.cancel(id)
            }
            if changed { return }
        }
    }

    /// How much has been observed so far (the mark of the current state).
    public var observationMark: ObservationMark { ObservationMark(machine.observed) }

    /// What was observed after `mark` (copies of the new entries only), and the mark to go on from.
    public func observations(since mark: ObservationMark) -> Observations {
        let observed = machine.observed
        return Observations(
            requests: Array(observed.requests.dropFirst(mark.requests)),
            events: Array(observed.events.dropFirst(mark.events)),
            updates: Array(observed.updates.dropFirst(mark.updates)),
            messages: Array(observed.messages.dropFirst(mark.messages)),
            messageLives: (min(mark.messages, observed.messages.count)..<observed.messages.count).map {
                observed.life(ofMessage: $0)
            },
            mark: ObservationMark(observed))
    }

    // MARK: Script

    /// Sends LAUNCH now if the executor is subscribed, else queues it for SUBSCRIBE. Fills in
    /// `agent_id` and `executor` when missing, as the master does.
    public func launch(_ task: Mesos_V1_TaskInfo) throws {
        let task = try prepare(task)
        apply { $0.launch(.task(task)) }
    }

    /// Sends (or queues) LAUNCH_GROUP; fills in each task like ``launch(_:)``.
    public func launchGroup(_ group: Mesos_V1_TaskGroupInfo) throws {
        var group = group
        guard !group.tasks.isEmpty else { throw LocalAgentError.invalidTask("empty task group") }
        group.tasks = try group.tasks.map(prepare)
        let ids = group.tasks.map(\.taskID.value)
        guard Set(ids).count == ids.count else { throw LocalAgentError.invalidTask("duplicate task ids \(ids)") }
        apply { $0.launch(.group(group)) }
    }

    private func prepare(_ task: Mesos_V1_TaskInfo) throws -> Mesos_V1_TaskInfo {
        var task = task
        if !task.hasAgentID { task.agentID.value = configuration.agentID }
        if !task.hasExecutor { task.executor = machine.configuration.executorInfo }
        guard task.isInitialized else {
            throw LocalAgentError.invalidTask("task \(task.taskID.value) lacks required fields (name, task_id?)")
        }
        guard !machine.knowsTask(task.taskID.value) else {
            throw LocalAgentError.invalidTask("task \(task.taskID.value) was already launched")
        }
        return task
    }

    /// A scheduler's kill: KILL for a delivered task; TASK_KILLED from the agent for a queued one.
    public func kill(taskID: String, killPolicy: Mesos_V1_KillPolicy? = nil) {
        apply { $0.kill(taskID, killPolicy: killPolicy) }
    }

    /// A framework message (MESSAGE event); lost unless the executor is subscribed.
    public func sendMessage(_ data: Data) {
        apply { $0.sendMessage(data) }
    }

    /// SHUTDOWN; the executor is terminating from now on (a later SUBSCRIBE gets just SHUTDOWN).
    public func shutdown() {
        apply { $0.shutdown() }
    }

    /// Closes the current stream without the terminating chunk, like a broken connection.
    /// Returns once the connection is closed.
    public func dropStream() async {
        let closing = apply { $0.dropStream() }
        await Self.wait(closing)
    }

    /// Queues ACKNOWLEDGED events instead of sending them, until ``releaseAcknowledgements()``.
    public func withholdAcknowledgements() {
        apply { machine in
            machine.withholdAcknowledgements()
            return []
        }
    }

    /// Sends every withheld ACKNOWLEDGED on the current stream and stops withholding.
    public func releaseAcknowledgements() {
        apply { $0.releaseAcknowledgements() }
    }

    /// While true, UPDATE calls get 503 "Agent has not finished recovery" and are not stored.
    public func rejectUpdates(_ reject: Bool) {
        apply { machine in
            machine.rejectUpdates(reject)
            return []
        }
    }

    // MARK: Plumbing

    /// Runs `change` on the state machine, performs the I/O it asks for, wakes waiters, and
    /// returns the close operations started.
    @discardableResult
    func apply(_ change: (inout AgentStateMachine) -> [AgentAction]) -> [EventLoopFuture<Void>] {
        let actions = change(&machine)
        let closing = perform(actions)
        waiters.resumeSatisfied(by: machine.observed)
        return closing
    }

    func perform(_ actions: [AgentAction]) -> [EventLoopFuture<Void>] {
        var closing: [EventLoopFuture<Void>] = []
        for action in actions {
            switch action {
            case .send(let event, let stream):
                guard let sink = streams[stream] else { continue }
                guard let payload = try? sink.encoding.encode(event) else { continue }
                sink.write(RecordIO.encode(payload))
            case .closeStream(let stream, let clean):
                guard let sink = streams.removeValue(forKey: stream) else { continue }
                if clean {
                    sink.finish()
                } else if let channel = connections[sink.connection] {
                    closing.append(channel.close())
                }
            case .endRecovery(let delay, let generation):
                commandSink.yield(.endRecovery(after: delay, generation: generation))
            }
        }
        return closing
    }

    static func wait(_ closing: [EventLoopFuture<Void>]) async {
        for future in closing { try? await future.get() }
    }
}

/// Where a stream's events go: its connection's channel, written from the agent's actor as each
/// event is decided. A write from outside the event loop is queued onto it in order, so the head,
/// the records and the terminating chunk go out as they were written, with one hop each (a task
/// pumping a stream into the connection's writer added two: one to the task, one to the loop).
struct EventStreamSink {
    var encoding: WireEncoding
    var connection: Int
    var channel: any Channel

    /// The response head of a stream: 200, chunked (the records are its chunks).
    func writeHead(version: HTTPVersion) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: encoding.contentType)
        headers.add(name: "Transfer-Encoding", value: "chunked")
        channel.writeAndFlush(
            HTTPServerResponsePart.head(HTTPResponseHead(version: version, status: .ok, headers: headers)),
            promise: nil)
    }

    /// One record (or, from a test, any bytes) as the next chunk. Lost if the peer is gone, as
    /// events sent to a dead stream are with the real agent.
    func write(_ record: ByteBuffer) {
        channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(record)), promise: nil)
    }

    /// The terminating chunk; then the connection closes.
    func finish() {
        let channel = self.channel
        channel.writeAndFlush(HTTPServerResponsePart.end(nil)).whenComplete { _ in channel.close(promise: nil) }
    }
}

/// Work for ``LocalAgent/run()``.
enum ServerCommand: Sendable {
    case serve(Listener)
    case endRecovery(after: Duration, generation: Int)
    /// The agent died handling a request (``LocalAgent/restart(atNextMessage:)``) and comes back so.
    case comeBack(afterDying: RestartPlan)
}
