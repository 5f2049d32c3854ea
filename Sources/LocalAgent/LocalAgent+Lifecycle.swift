import Foundation
import MesosCodec
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// How a restarted agent comes back (see `RestartTests` for what the executor sees).
public struct RestartPlan: Sendable {
    /// Listen again right away; otherwise stay down until ``LocalAgent/comeBack()``.
    public var comeBack: Bool
    /// Skip the 503-to-everything phase; otherwise wait for ``LocalAgent/recoverContainerizer(window:)``.
    public var recoverContainerizer: Bool
    /// The RECOVERING window once the containerizer is recovered.
    public var window: RecoveryWindow

    /// A plan; see ``manual`` and ``immediately`` for the usual two.
    public init(comeBack: Bool, recoverContainerizer: Bool, window: RecoveryWindow = .configured) {
        self.comeBack = comeBack
        self.recoverContainerizer = recoverContainerizer
        self.window = window
    }

    /// Stays down until the test says otherwise.
    public static let manual = RestartPlan(comeBack: false, recoverContainerizer: false)
    /// Comes straight back, containerizer recovered, RECOVERING for the configured timeout.
    public static let immediately = RestartPlan(comeBack: true, recoverContainerizer: true)
}

/// How long a restarted agent stays RECOVERING (UPDATE and MESSAGE get 503).
public enum RecoveryWindow: Sendable, Hashable {
    /// `reregistrationTimeout` from the configuration, like `--executor_reregistration_timeout`.
    case configured
    /// This long after the containerizer is recovered.
    case duration(Duration)
    /// Until ``LocalAgent/endRecovery()``.
    case untilEnded
}

extension LocalAgent {
    /// Starts listening on the configured host and port (and unix socket, if any). Connections
    /// are only served while ``run()`` runs.
    public func bind() async throws {
        guard listeners.isEmpty, machine.observed.phase != .down else {
            throw LocalAgentError.invalidState("already listening")
        }
        try await listen()
    }

    /// Serves connections (and runs recovery timers) until the calling task is cancelled,
    /// then closes every connection.
    public func run() async {
        guard !isRunning else { return }
        isRunning = true
        let commands = self.commands
        await withDiscardingTaskGroup { group in
            for await command in commands {
                switch command {
                case .serve(let listener):
                    group.addTask { await ExecutorConnection.serve(listener, agent: self) }
                case .comeBack(let plan):
                    group.addTask { await self.comeBack(afterDying: plan) }
                case .endRecovery(let delay, let generation):
                    group.addTask {
                        do { try await Task.sleep(for: delay) } catch { return }
                        await self.recoveryWindowElapsed(generation: generation)
                    }
                }
            }
        }
        await closeEverything()
        waiters.cancelAll()
    }

    /// Simulates an agent restart: ``goDown()``, then as much of coming back as `plan` says.
    public func restart(_ plan: RestartPlan = .manual) async throws {
        await goDown()
        guard plan.comeBack else { return }
        try await comeBack()
        if plan.recoverContainerizer { recoverContainerizer(window: plan.window) }
    }

    /// The agent process dies: every connection is closed abruptly (streams end without the
    /// terminating chunk) and the port refuses connections (even while a child process someone
    /// is starting holds a copy of the listening socket). Returns once all of that is done.
    public func goDown() async {
        guard machine.observed.phase != .down else { return }
        comebackAfterDying = nil
        apply { $0.goDown() }
        await closeEverything()
    }

    /// Listens again on the same port; every request gets 503 until ``recoverContainerizer(window:)``.
    public func comeBack() async throws {
        guard machine.observed.phase == .down else { throw LocalAgentError.invalidState("the agent is not down") }
        // What an agent that died handling a request began to close is closed before it listens again.
        await closeEverything()
        apply { machine in
            machine.comeBack()
            return []
        }
        try await listen()
    }

    /// The containerizer is recovered: the agent is RECOVERING (SUBSCRIBE works, UPDATE and
    /// MESSAGE get 503) for `window`. Without checkpointing it runs normally at once.
    public func recoverContainerizer(window: RecoveryWindow = .configured) {
        let duration: Duration? =
            switch window {
            case .configured: configuration.reregistrationTimeout
            case .duration(let duration): duration
            case .untilEnded: nil
            }
        apply { $0.recoverContainerizer(window: duration) }
    }

    /// Ends the RECOVERING window now; an executor that has not re-subscribed is destroyed.
    public func endRecovery() {
        apply { machine in
            machine.endRecovery()
            return []
        }
    }

    func recoveryWindowElapsed(generation: Int) {
        apply { machine in
            machine.recoveryWindowElapsed(generation: generation)
            return []
        }
    }

    private func listen() async throws {
        let host = configuration.host
        let port = boundPort ?? configuration.port
        let tls = try tlsContext()
        let accepted = self.accepted
        let descriptor =
            boundPort == nil
            ? try ListeningSocket.makeTCP(host: host, port: port, backlog: Self.backlog)
            : try await ListeningSocket.makeTCP(host: host, port: port, backlog: Self.backlog, patience: .seconds(30))
        // NIO owns the descriptor from here on (and closes it should registering fail).
        let loop = eventLoopGroup.next()
        let listener = try await Self.bootstrap(loop)
            .bind(descriptor) { channel in
                Self.initializeConnection(channel, tls: tls, accepted: accepted)
            }
        boundPort = listener.channel.localAddress?.port
        machine.port = boundPort ?? 0
        listeners.append(ListeningSocket(channel: listener.channel, descriptor: descriptor))
        commandSink.yield(.serve(listener))
        if let path = configuration.unixSocketPath {
            let unix = try await Self.bootstrap(loop)
                .bind(
                    unixDomainSocketPath: path,
                    cleanupExistingSocketFile: true,
                    childChannelInitializer: { channel in
                        Self.initializeConnection(channel, tls: nil, accepted: accepted)
                    }
                )
            listeners.append(ListeningSocket(channel: unix.channel, descriptor: nil))
            commandSink.yield(.serve(unix))
        }
    }

    private static let backlog: CInt = 256

    /// A listener and the connections it accepts share one event loop: an accepted connection is
    /// registered and read where it was accepted, without a hop to another thread first (which
    /// delayed an executor's first request by one or two wake-ups of the other core, and its
    /// SUBSCRIBED with it).
    private static func bootstrap(_ loop: any EventLoop) -> ServerBootstrap {
        ServerBootstrap(group: loop, childGroup: loop)
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
    }

    /// The TLS context when the agent serves https (as an agent built with SSL does).
    private func tlsContext() throws -> NIOSSLContext? {
        guard let certificate = configuration.tlsCertificateChainFile, let key = configuration.tlsPrivateKeyFile else {
            return nil
        }
        let chain = try NIOSSLCertificate.fromPEMFile(certificate).map { NIOSSLCertificateSource.certificate($0) }
        // PEM whatever the file is called (NIOSSL guesses DER from a ".key" extension).
        let privateKey = try NIOSSLPrivateKey(file: key, format: .pem)
        let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(privateKey))
        return try NIOSSLContext(configuration: tls)
    }

    private static func initializeConnection(
        _ channel: any Channel, tls: NIOSSLContext?, accepted: AcceptedConnections
    ) -> EventLoopFuture<ConnectionChannel> {
        channel.eventLoop.makeCompletedFuture {
            if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
            // No pipelining assistance: a request pipelined behind SUBSCRIBE must reach us so we
            // can report it, and is never answered, as with libprocess.
            try channel.pipeline.syncOperations.configureHTTPServerPipeline(
                withPipeliningAssistance: false,
                withErrorHandling: true
            )
            try channel.pipeline.syncOperations.addHandler(ArrivalStamp())
            let connection = try ConnectionChannel(wrappingChannelSynchronously: channel)
            accepted.hold(connection)
            return connection
        }
    }

    /// Sets the agent to die as it stores the executor's next MESSAGE, before it writes the answer
    /// (``LocalAgentState/messages`` has it, the executor never hears the 202: it must send it
    /// again), and then to come back as much as `plan` says. ``LocalAgentState/diesAtNextMessage``
    /// holds until then; a restart for another reason meanwhile disarms it.
    public func restart(atNextMessage plan: RestartPlan) throws {
        guard machine.observed.phase != .down else { throw LocalAgentError.invalidState("the agent is down") }
        comebackAfterDying = plan
        apply { machine in
            machine.dieAtNextMessage()
            return []
        }
    }

    /// What an agent that died at a MESSAGE does next (``restart(atNextMessage:)``), run by ``run()``.
    func comeBack(afterDying plan: RestartPlan) async {
        guard plan.comeBack else { return }
        // If the port cannot be listened on again the agent stays down, as the state shows.
        guard (try? await comeBack()) != nil else { return }
        if plan.recoverContainerizer { recoverContainerizer(window: plan.window) }
    }

    /// Closes what the agent has open and waits until it is closed, including what a request that
    /// made the agent die began to close (``closeAtOnce()``).
    private func closeEverything() async {
        let closing = closeAtOnce() + dying
        dying.removeAll()
        await Self.wait(closing)
        await accepted.closeAll()
    }

    /// Begins closing the listeners and every connection, which are forgotten at once; the futures
    /// say when they are closed.
    private func closeAtOnce() -> [EventLoopFuture<Void>] {
        var closing = listeners.map { $0.close() }
        listeners.removeAll()
        closing += connections.values.map { $0.close() }
        // The process that read their requests is gone: a request a connection still holds (read
        // but not handled, as pipelined calls are) is never handled, by this agent or the next.
        connections.removeAll()
        streams.removeAll()
        return closing
    }

    // MARK: Called by connections

    func register(_ channel: any Channel) -> Int? {
        guard machine.observed.phase != .down else { return nil }
        nextConnectionID += 1
        connections[nextConnectionID] = channel
        return nextConnectionID
    }

    func unregister(_ connection: Int) {
        connections.removeValue(forKey: connection)
    }

    /// `version`: the request's HTTP version, which a stream's response head repeats.
    func handle(_ request: ExecutorRequest, version: HTTPVersion, connection: Int) -> ConnectionReply {
        // A connection of an agent that has since gone down (see `closeEverything`).
        guard let channel = connections[connection] else { return .close }
        var reply = ConnectionReply.close
        defer {
            // The request made the agent die (``restart(atNextMessage:)``): nothing it had open
            // serves another request, from this moment on.
            if machine.observed.phase == .down {
                dying += closeAtOnce()
                if let plan = comebackAfterDying.take() { commandSink.yield(.comeBack(afterDying: plan)) }
            }
        }
        apply { machine in
            let (answer, actions) = machine.receive(request)
            switch answer {
            case .respond(let response):
                reply = .response(response)
            case .close:
                reply = .close
            case .stream(let number, let encoding):
                // The head goes out before the first event does (the actions below send SUBSCRIBED).
                let sink = EventStreamSink(encoding: encoding, connection: connection, channel: channel)
                sink.writeHead(version: version)
                streams[number] = sink
                reply = .stream(number)
            }
            return actions
        }
        return reply
    }

    func heartbeat(_ stream: Int) -> Bool {
        apply { $0.heartbeat(stream) }
        return machine.currentStream == stream
    }

    func streamClosedByPeer(_ stream: Int) {
        apply { machine in
            machine.streamClosedByPeer(stream)
            return []
        }
        streams.removeValue(forKey: stream)
    }

    func requestOnSubscribeConnection(_ stream: Int, method: String, uri: String) {
        apply { machine in
            machine.requestOnSubscribeConnection(stream, method: method, uri: uri)
            return []
        }
    }
}

typealias ConnectionChannel = NIOAsyncChannel<StampedRequestPart, HTTPServerResponsePart>
typealias Listener = NIOAsyncChannel<ConnectionChannel, Never>

/// How a connection answers one request.
enum ConnectionReply: Sendable {
    case response(AgentResponse)
    /// The stream's head is written: the connection only reports what else comes on it.
    case stream(Int)
    case close
}
