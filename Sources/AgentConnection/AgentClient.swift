import AsyncHTTPClient
public import Logging
public import MesosCodec
public import MesosProto
public import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

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
/// SUBSCRIBE is one long-lived request whose chunked body is the event stream; every other call
/// goes over one other keep-alive connection, pipelined (a call pipelined behind SUBSCRIBE would
/// never be answered). Create one with ``withAgentClient(_:logger:_:)``.
public struct AgentClient: Sendable {
    public let configuration: AgentClientConfiguration
    private let http: HTTPClient
    private let calls: CallConnection
    private let logger: Logger

    init(configuration: AgentClientConfiguration, http: HTTPClient, calls: CallConnection, logger: Logger) {
        self.configuration = configuration
        self.http = http
        self.calls = calls
        self.logger = logger
    }

    /// Opens the event stream. Returns once the agent answered 200; the events then arrive
    /// through the returned sequence, which ends (or throws) when the stream is lost.
    ///
    /// Begins a new ``CallEpoch`` before the request is sent: a call made in an earlier one that
    /// is not written yet never is.
    public func subscribe(_ call: Mesos_V1_Executor_Call) async throws(AgentError) -> AgentEventStream {
        let request = try makeRequest(call, accept: configuration.encoding.contentType)
        calls.beginEpoch()
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, deadline: .now() + configuration.callTimeout, logger: logger)
        } catch {
            throw AgentError.connectionFailed(call: "SUBSCRIBE", error)
        }
        guard response.status == .ok else {
            let body = await Self.collectText(response.body)
            throw AgentError.unexpectedStatus(Int(response.status.code), call: "SUBSCRIBE", body: body)
        }
        let contentType = response.headers.first(name: "content-type") ?? ""
        guard let encoding = WireEncoding(contentType: contentType) else {
            throw AgentError.unexpectedStatus(200, call: "SUBSCRIBE", body: "unexpected Content-Type '\(contentType)'")
        }
        return AgentEventStream(
            body: response.body, encoding: encoding, maximumEventSize: configuration.maximumEventSize)
    }

    /// The epoch calls are made in now: read it when deciding to make a call (when an UPDATE is
    /// handed out, while subscribed) and pass it to ``send(_:madeIn:)``.
    public var callEpoch: CallEpoch { CallEpoch(value: calls.currentEpoch) }

    /// Sends UPDATE, MESSAGE or HEARTBEAT and returns when the agent accepted it (202). A call made
    /// in `epoch` (the current one when nil) fails unsent, retryable, once a SUBSCRIBE began another.
    public func send(_ call: Mesos_V1_Executor_Call, madeIn epoch: CallEpoch? = nil) async throws(AgentError) {
        let name = Self.name(of: call)
        let body = try encode(call)
        var headers = callHeaders()
        headers.add(name: "Host", value: configuration.endpoint.hostHeader)
        let answer: CallConnection.Answer
        do {
            answer = try await calls.post(
                headers: headers, body: ByteBuffer(bytes: body), timeout: configuration.callTimeout,
                epoch: (epoch ?? callEpoch).value)
        } catch {
            throw AgentError.connectionFailed(call: name, error)
        }
        guard answer.status == .accepted || answer.status == .ok else {
            throw AgentError.unexpectedStatus(
                Int(answer.status.code), call: name, body: answer.body.trimmingWhitespace())
        }
    }

    private func encode(_ call: Mesos_V1_Executor_Call) throws(AgentError) -> [UInt8] {
        do {
            return try configuration.encoding.encode(call)
        } catch {
            throw AgentError.invalidCall(call: Self.name(of: call), String(describing: error))
        }
    }

    /// The headers every call carries: its encoding and, when set, the token.
    private func callHeaders() -> HTTPHeaders {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: configuration.encoding.contentType)
        if let token = configuration.authenticationToken {
            headers.add(name: "Authorization", value: "Bearer \(token)")
        }
        return headers
    }

    /// SUBSCRIBE's request (async-http-client's), accepting `accept`.
    private func makeRequest(_ call: Mesos_V1_Executor_Call, accept: String) throws(AgentError) -> HTTPClientRequest {
        let bytes = try encode(call)
        var request = HTTPClientRequest(url: configuration.endpoint.url)
        request.method = .POST
        request.headers = callHeaders()
        request.headers.add(name: "Accept", value: accept)
        request.body = .bytes(ByteBuffer(bytes: bytes))
        return request
    }

    static func name(of call: Mesos_V1_Executor_Call) -> String {
        call.hasType ? String(describing: call.type).uppercased() : "UNKNOWN"
    }

    private static func collectText(_ body: HTTPClientResponse.Body) async -> String {
        var collected = ByteBuffer()
        do {
            for try await var chunk in body {
                if collected.readableBytes < 4096 { collected.writeBuffer(&chunk) }
            }
        } catch {
            // A broken error body still leaves the status to report.
        }
        return String(buffer: collected).trimmingWhitespace()
    }
}

/// Runs `body` with an ``AgentClient`` whose connections are closed when `body` returns.
public func withAgentClient<Result: Sendable>(
    _ configuration: AgentClientConfiguration,
    logger: Logger,
    _ body: (AgentClient) async throws -> Result
) async throws -> Result {
    var httpConfiguration = HTTPClient.Configuration()
    // The event stream is silent for up to 30 minutes between heartbeats: no read timeout.
    httpConfiguration.timeout = .init(connect: configuration.connectTimeout, read: nil)
    httpConfiguration.connectionPool = .init(idleTimeout: .seconds(300))
    // A call that cannot connect fails at once; its caller retries with its own backoff. Left to wait
    // in the pool for a connection, an UPDATE posted just before the agent went down would be sent
    // once it is back, after the re-SUBSCRIBE carried the same update and it was acknowledged.
    httpConfiguration.connectionPool.retryConnectionEstablishment = false
    httpConfiguration.decompression = .disabled
    httpConfiguration.redirectConfiguration = .disallow
    var callsTLS: Swift.Result<NIOSSLContext, any Error>?
    if case .https = configuration.endpoint.transport {
        var tls = TLSConfiguration.makeClientConfiguration()
        if !configuration.verifyCertificate { tls.certificateVerification = .none }
        if let caFile = configuration.trustedCAFile { tls.trustRoots = .file(caFile) }
        httpConfiguration.tlsConfiguration = tls
        // A bad CA file fails each call (as it fails SUBSCRIBE), not the client's creation.
        callsTLS = Swift.Result { try NIOSSLContext(configuration: tls) }
    }
    let http = HTTPClient(eventLoopGroup: MultiThreadedEventLoopGroup.singleton, configuration: httpConfiguration)
    let calls = CallConnection(
        endpoint: configuration.endpoint, tls: callsTLS, connectTimeout: configuration.connectTimeout)
    let client = AgentClient(configuration: configuration, http: http, calls: calls, logger: logger)
    do {
        let result = try await body(client)
        await calls.close()
        try? await http.shutdown()
        return result
    } catch {
        await calls.close()
        try? await http.shutdown()
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
