public import MesosCodec
public import MesosProto
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SystemSupport

/// How the executor talks to its agent.
public struct AgentClientConfiguration: Sendable {
    public var endpoint: AgentEndpoint
    public var encoding: WireEncoding
    /// Sent as `Authorization: Bearer <token>` on every call when set.
    public var authenticationToken: String?
    /// Largest event the executor accepts on the stream.
    public var maximumEventSize: Int
    /// How long a non-SUBSCRIBE call may take to be answered.
    public var callTimeout: TimeAmount
    public var connectTimeout: TimeAmount
    /// A CA bundle for https agents; nil uses the system's roots.
    public var trustedCAFile: String?
    /// Whether to verify the agent's certificate over https (libprocess does not by default).
    public var verifyCertificate: Bool

    public init(
        endpoint: AgentEndpoint,
        encoding: WireEncoding = .protobuf,
        authenticationToken: String? = nil,
        maximumEventSize: Int = RecordIO.defaultMaximumRecordSize,
        callTimeout: TimeAmount = .seconds(30),
        connectTimeout: TimeAmount = .seconds(5),
        trustedCAFile: String? = nil,
        verifyCertificate: Bool = false
    ) {
        self.endpoint = endpoint
        self.encoding = encoding
        self.authenticationToken = authenticationToken
        self.maximumEventSize = maximumEventSize
        self.callTimeout = callTimeout
        self.connectTimeout = connectTimeout
        self.trustedCAFile = trustedCAFile
        self.verifyCertificate = verifyCertificate
    }
}

/// The calls between two SUBSCRIBEs: a call is made in one (``AgentClient/callEpoch``) and is
/// written only while it lasts, so nothing handed out before a lost stream reaches the agent after
/// the SUBSCRIBE that followed.
public struct CallEpoch: Sendable, Equatable {
    fileprivate let value: Int
}

/// The executor side of `POST /api/v1/executor`.
///
/// SUBSCRIBE is one long-lived request on a connection of its own, whose chunked body is the event
/// stream; every other call goes over one other keep-alive connection, pipelined (a call pipelined
/// behind SUBSCRIBE would never be answered). Create one with ``withAgentClient(_:_:)``.
public struct AgentClient: Sendable {
    public let configuration: AgentClientConfiguration
    private let tls: Result<NIOSSLContext, any Error>?
    private let calls: CallConnection
    private let eventStreams: OpenEventStreams
    private let headStart = SubscribeHeadStart()

    init(
        configuration: AgentClientConfiguration, tls: Result<NIOSSLContext, any Error>?, calls: CallConnection,
        eventStreams: OpenEventStreams
    ) {
        self.configuration = configuration
        self.tls = tls
        self.calls = calls
        self.eventStreams = eventStreams
    }

    /// Opens the event stream. Returns once the agent answered 200; the events then arrive
    /// through the returned sequence, which ends (or throws) when the stream is lost.
    ///
    /// Begins a new ``CallEpoch`` before the request is sent: a call made in an earlier one that
    /// is not written yet never is. Takes over the SUBSCRIBE ``beginSubscribe(_:)`` began when
    /// that one was `call`.
    public func subscribe(_ call: Mesos_V1_Executor_Call) async throws(AgentError) -> AgentEventStream {
        let opening: EventLoopFuture<(HTTPResponseHead, EventStreamBody)>
        if let begun = headStart.take() {
            if begun.call == call {
                opening = begun.opening
            } else {
                // One begun for another call is let finish and closed first, so that it cannot
                // reach the agent after this one and take its place.
                if let opened = try? await begun.opening.get() { await opened.1.close() }
                opening = try open(call)
            }
        } else {
            opening = try open(call)
        }
        let answer: HTTPResponseHead
        let stream: EventStreamBody
        #if SANITIZE_THREAD
            // The answer is made on the event loop and is often there before this task awaits it
            // (SUBSCRIBE was begun at start): see `sanitizerHappensBefore`. Callbacks run in the
            // order they were added, so this one runs before the one `get()` resumes this task from.
            opening.whenComplete { _ in sanitizerHappensBefore(opening) }
        #endif
        do {
            (answer, stream) = try await opening.get()
        } catch {
            throw AgentError.connectionFailed(call: "SUBSCRIBE", error)
        }
        sanitizerHappensAfter(opening)
        guard answer.status == .ok else {
            let text = await stream.collectText()
            throw AgentError.unexpectedStatus(
                Int(answer.status.code), call: "SUBSCRIBE", body: text.trimmingWhitespace())
        }
        let contentType = answer.headers.first(name: "content-type") ?? ""
        guard let encoding = WireEncoding(contentType: contentType) else {
            throw AgentError.unexpectedStatus(200, call: "SUBSCRIBE", body: "unexpected Content-Type '\(contentType)'")
        }
        return AgentEventStream(body: stream, encoding: encoding, maximumEventSize: configuration.maximumEventSize)
    }

    /// Sends SUBSCRIBE now, before anything awaits it: the next ``subscribe(_:)`` of the same call
    /// takes it over, so that a starting executor's request is on its way while the rest of it is
    /// made (a fresh executor's first SUBSCRIBE is known from its configuration alone). A
    /// ``subscribe(_:)`` of another call closes it first; one never followed by a ``subscribe(_:)``
    /// is closed with the client. The calling thread connects and writes it itself where it can
    /// (plain HTTP to an IP address or a unix socket: see ``DirectRequest``), so that it does not
    /// wait for the event loop's first connection.
    public func beginSubscribe(_ call: Mesos_V1_Executor_Call) {
        // A call that cannot be encoded is reported by the subscribe() that sends it.
        guard let opening = try? open(call, direct: true) else { return }
        headStart.put(call, opening)
    }

    /// Begins the epoch and sends SUBSCRIBE on a connection of its own.
    private func open(
        _ call: Mesos_V1_Executor_Call, direct: Bool = false
    ) throws(AgentError) -> EventLoopFuture<(HTTPResponseHead, EventStreamBody)> {
        let body = try encode(call)
        var headers = callHeaders()
        headers.add(name: "Accept", value: configuration.encoding.contentType)
        headers.add(name: "Content-Length", value: String(body.count))
        let request = HTTPRequestHead(
            version: .http1_1, method: .POST, uri: configuration.endpoint.path, headers: headers)
        calls.beginEpoch()
        return EventStreamConnection.open(
            configuration.endpoint, tls: tls, connectTimeout: configuration.connectTimeout, request: request,
            body: ByteBuffer(bytes: body), answerTimeout: configuration.callTimeout, tracking: eventStreams,
            direct: direct)
    }

    /// The epoch calls are made in now: read it when deciding to make a call (when an UPDATE is
    /// handed out, while subscribed) and pass it to ``send(_:madeIn:)``.
    public var callEpoch: CallEpoch { CallEpoch(value: calls.currentEpoch) }

    /// Sends UPDATE, MESSAGE or HEARTBEAT and returns when the agent accepted it (202). A call made
    /// in `epoch` (the current one when nil) fails unsent, retryable, once a SUBSCRIBE began another.
    public func send(_ call: Mesos_V1_Executor_Call, madeIn epoch: CallEpoch? = nil) async throws(AgentError) {
        let body = try encode(call)
        let headers = callHeaders()
        let answer: CallConnection.Answer
        do {
            answer = try await calls.post(
                headers: headers, body: ByteBuffer(bytes: body), timeout: configuration.callTimeout,
                epoch: (epoch ?? callEpoch).value)
        } catch {
            throw AgentError.connectionFailed(call: Self.name(of: call), error)
        }
        guard answer.status == .accepted || answer.status == .ok else {
            throw AgentError.unexpectedStatus(
                Int(answer.status.code), call: Self.name(of: call), body: answer.body.trimmingWhitespace())
        }
    }

    private func encode(_ call: Mesos_V1_Executor_Call) throws(AgentError) -> [UInt8] {
        do {
            return try configuration.encoding.encode(call)
        } catch {
            throw AgentError.invalidCall(call: Self.name(of: call), String(describing: error))
        }
    }

    /// The headers every call carries: the host, its encoding and, when set, the token.
    private func callHeaders() -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: configuration.endpoint.hostHeader)
        headers.add(name: "Content-Type", value: configuration.encoding.contentType)
        if let token = configuration.authenticationToken {
            headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        return headers
    }

    /// The call's type as Mesos spells it, for errors. A table rather than `String(describing:)`,
    /// which reflects on the enum: the first time that cost a starting executor's first update about
    /// 0.2 ms of scanning the runtime's conformance records, and every call after it a Mirror.
    static func name(of call: Mesos_V1_Executor_Call) -> String {
        guard call.hasType else { return "UNKNOWN" }
        return switch call.type {
        case .unknown: "UNKNOWN"
        case .subscribe: "SUBSCRIBE"
        case .update: "UPDATE"
        case .message: "MESSAGE"
        case .heartbeat: "HEARTBEAT"
        }
    }
}

/// The SUBSCRIBE ``AgentClient/beginSubscribe(_:)`` sent, until a ``AgentClient/subscribe(_:)``
/// takes it over.
private final class SubscribeHeadStart: Sendable {
    typealias Opening = EventLoopFuture<(HTTPResponseHead, EventStreamBody)>
    private let slot = LockedValue<(call: Mesos_V1_Executor_Call, opening: Opening)?>(nil)

    func put(_ call: Mesos_V1_Executor_Call, _ opening: Opening) {
        slot.withLock { $0 = (call, opening) }
    }

    /// The SUBSCRIBE begun, and for which call; nil when none is waiting.
    func take() -> (call: Mesos_V1_Executor_Call, opening: Opening)? {
        slot.withLock { slot in
            defer { slot = nil }
            return slot
        }
    }
}

/// Runs `body` with an ``AgentClient`` whose connections are closed when `body` returns.
public func withAgentClient<Result: Sendable>(
    _ configuration: AgentClientConfiguration,
    _ body: (AgentClient) async throws -> Result
) async throws -> Result {
    var tls: Swift.Result<NIOSSLContext, any Error>?
    if case .https = configuration.endpoint.transport {
        var tlsConfiguration = TLSConfiguration.makeClientConfiguration()
        if !configuration.verifyCertificate { tlsConfiguration.certificateVerification = .none }
        if let caFile = configuration.trustedCAFile { tlsConfiguration.trustRoots = .file(caFile) }
        // A bad CA file fails each call (SUBSCRIBE included), not the client's creation.
        tls = Swift.Result { try NIOSSLContext(configuration: tlsConfiguration) }
    }
    let calls = CallConnection(endpoint: configuration.endpoint, tls: tls, connectTimeout: configuration.connectTimeout)
    let eventStreams = OpenEventStreams()
    let client = AgentClient(configuration: configuration, tls: tls, calls: calls, eventStreams: eventStreams)
    do {
        let result = try await body(client)
        await calls.close()
        await eventStreams.closeAll()
        return result
    } catch {
        await calls.close()
        await eventStreams.closeAll()
        throw error
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var scalars = Substring(self)
        while let first = scalars.first, first.isWhitespace { scalars.removeFirst() }
        while let last = scalars.last, last.isWhitespace { scalars.removeLast() }
        return String(scalars)
    }
}
