import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SystemSupport

/// The one keep-alive connection that every call but SUBSCRIBE goes over, as Mesos's own executor
/// library keeps one: calls made while others are in flight are pipelined behind them, and the agent
/// (libprocess) answers the requests of a connection strictly in order. Opened by the first call
/// and again by the first call after the agent closed it. A call is written once at most: one that
/// cannot connect, finds the connection closed or loses it before its answer fails, and only its
/// caller retries it (the runtime knows whether an UPDATE was acknowledged meanwhile, or carried by
/// a new SUBSCRIBE; a retry down here could not, and would send it again after its ACKNOWLEDGED).
///
/// Calls belong to an epoch, which each SUBSCRIBE begins (``beginEpoch()``): a call made in an
/// earlier epoch is never written once a new one has begun, whichever connection it would go
/// over. Otherwise an UPDATE handed out before the stream was lost could reach the restarted agent
/// after the SUBSCRIBE that carried it, and after that SUBSCRIBE's ACKNOWLEDGED.
///
/// Written on NIO directly rather than through async-http-client, whose per-request machinery
/// (a transaction, its state machines, the pool's bookkeeping, a response-body sequence) cost the
/// executor about a quarter of its CPU per command task and two fifths per coarse closure, two
/// UPDATEs each (paired runs, 2026-11-30).
final class CallConnection: Sendable {
    /// The agent's answer: its status and the start of its body (for error messages).
    struct Answer: Sendable {
        var status: HTTPResponseStatus
        var body: String
    }

    private enum State {
        case idle
        case connecting(EventLoopFuture<any Channel>)
        case open(any Channel)
    }

    private let endpoint: AgentEndpoint
    /// For https: the TLS context, or why there is none.
    private let tls: Result<NIOSSLContext, any Error>?
    private let connectTimeout: TimeAmount
    private let state = LockedValue(State.idle)
    private let epoch = LockedValue(0)
    /// Calls made and not yet taken by the event loop, and whether a loop task will take them.
    private let outbox = LockedValue<(calls: [OutgoingCall], drainScheduled: Bool)>(([], false))

    init(endpoint: AgentEndpoint, tls: Result<NIOSSLContext, any Error>?, connectTimeout: TimeAmount) {
        self.endpoint = endpoint
        self.tls = tls
        self.connectTimeout = connectTimeout
    }

    /// The epoch calls are made in now.
    var currentEpoch: Int { epoch.withLock { $0 } }

    /// Begins a new epoch (a SUBSCRIBE is about to be sent): calls made in earlier ones that are not
    /// written yet never will be, and the connection is closed. Nothing is awaited: SUBSCRIBE is
    /// not held up (an awaited close cost a fresh executor ~0.4 ms before its SUBSCRIBE, paired
    /// runs), and the epoch, not the close, is what keeps the old calls off the wire.
    func beginEpoch() {
        epoch.withLock { $0 += 1 }
        closeConnection()
    }

    /// POSTs `body` with `headers` for a call made in `epoch` and returns the answer, or throws a
    /// ``CallConnectionError`` (or the error connecting) when there is none within `timeout`.
    func post(headers: HTTPHeaders, body: ByteBuffer, timeout: TimeAmount, epoch: Int) async throws -> Answer {
        var head = HTTPRequestHead(version: .http1_1, method: .POST, uri: endpoint.path, headers: headers)
        head.headers.replaceOrAdd(name: "Content-Length", value: String(body.readableBytes))
        let channel = try await openChannel()
        let answer = channel.eventLoop.makePromise(of: Answer.self)
        let call = PendingCall(head: head, body: body, timeout: timeout, epoch: epoch, answer: answer)
        return try await withCheckedThrowingContinuation { reply in
            enqueue(OutgoingCall(channel: channel, call: call, reply: reply))
        }
    }

    /// The open connection, taken without a hop to its event loop (awaiting even a completed
    /// future from another thread goes through the loop and back); otherwise the one being opened.
    private func openChannel() async throws -> any Channel {
        let open = state.withLock { state -> (any Channel)? in
            if case .open(let channel) = state, channel.isActive { return channel }
            return nil
        }
        if let open { return open }
        return try await channel().get()
    }

    /// Hands a call to the event loop. Calls made while the loop has not yet taken the previous
    /// ones go out with them, in the order they were made, and one flush (one `writev`, one wake-up
    /// of the agent) sends them all: what a burst of updates needs, where a flush per call cost a
    /// system call and an event-loop task each. The answer is passed on from the loop, where the
    /// callbacks are registered (registered from another thread, each would be a loop task more).
    private func enqueue(_ outgoing: OutgoingCall) {
        let first = outbox.withLock { outbox in
            outbox.calls.append(outgoing)
            defer { outbox.drainScheduled = true }
            return !outbox.drainScheduled
        }
        guard first else { return }
        outgoing.channel.eventLoop.execute { [self] in
            let calls = outbox.withLock { outbox in
                let taken = outbox.calls
                outbox.calls = []
                outbox.drainScheduled = false
                return taken
            }
            for (index, outgoing) in calls.enumerated() {
                let (channel, call, reply) = (outgoing.channel, outgoing.call, outgoing.reply)
                call.answer.futureResult.whenComplete { reply.resume(with: $0) }
                // A write that never reaches the handler (the connection closed meanwhile) fails
                // the call; an answer the handler already gave ignores this.
                let written = channel.eventLoop.makePromise(of: Void.self)
                written.futureResult.whenFailure { call.answer.fail($0) }
                channel.write(call, promise: written)
                // Flushed after its last call in a row (a reconnect may put the next on another).
                if index == calls.count - 1 || calls[index + 1].channel !== channel { channel.flush() }
            }
        }
    }

    /// Closes the connection (one still being opened as soon as it is); calls in flight fail.
    func close() async {
        try? await closeConnection()?.get()
    }

    /// Starts closing the connection and forgets it; returns the close of an open one.
    @discardableResult
    private func closeConnection() -> EventLoopFuture<Void>? {
        let previous = state.withLock { state in
            defer { state = .idle }
            return state
        }
        switch previous {
        case .idle:
            return nil
        case .connecting(let future):
            future.whenSuccess { $0.close(promise: nil) }
            return nil
        case .open(let channel):
            return channel.close()
        }
    }

    /// The open connection, or the one being opened (a new one when there is neither).
    private func channel() -> EventLoopFuture<any Channel> {
        let (future, isNew) = state.withLock { state -> (EventLoopFuture<any Channel>, Bool) in
            switch state {
            case .open(let channel) where channel.isActive:
                return (channel.eventLoop.makeSucceededFuture(channel), false)
            case .connecting(let future):
                return (future, false)
            case .idle, .open:
                let future = connect()
                state = .connecting(future)
                return (future, true)
            }
        }
        // Registered outside the lock: a future already complete may run the callback at once.
        if isNew {
            future.whenComplete { [self] result in
                state.withLock { state in
                    guard case .connecting(let pending) = state, pending === future else { return }
                    switch result {
                    case .success(let channel): state = .open(channel)
                    case .failure: state = .idle
                    }
                }
            }
        }
        return future
    }

    private func connect() -> EventLoopFuture<any Channel> {
        endpoint.connect(tls: tls, connectTimeout: connectTimeout) { pipeline in
            try pipeline.addHandler(CallHandler(currentEpoch: { [weak self] in self?.currentEpoch }))
        }
    }
}

/// Why a call on the connection got no answer.
struct CallConnectionError: Error, CustomStringConvertible {
    var description: String

    static let closed = Self(description: "the agent closed the connection before answering")
    static func noAnswer(within timeout: TimeAmount) -> Self {
        Self(description: "no answer within \(timeout.nanoseconds / 1_000_000) ms; the connection is closed")
    }
    static let unexpectedAnswer = Self(description: "the agent answered a request that was not sent")
    static let epochEnded = Self(
        description: "not sent: the executor has subscribed again since the call was made")
}

/// A call on its way to the event loop: its connection, its request and who awaits its answer.
private struct OutgoingCall: Sendable {
    let channel: any Channel
    let call: PendingCall
    let reply: CheckedContinuation<CallConnection.Answer, any Error>
}

/// A request handed to the connection's handler, with the promise its answer fulfils.
private struct PendingCall {
    var head: HTTPRequestHead
    var body: ByteBuffer
    var timeout: TimeAmount
    /// The epoch the call was made in; it is written only while that epoch lasts.
    var epoch: Int
    var answer: EventLoopPromise<CallConnection.Answer>
}

/// Writes requests and pairs each answer with the oldest request still waiting (HTTP/1.1 answers
/// pipelined requests in order). Any failure fails every waiting request and closes the connection.
private final class CallHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = PendingCall
    typealias OutboundOut = HTTPClientRequestPart

    private var waiting = CircularBuffer<(answer: EventLoopPromise<CallConnection.Answer>, timer: Scheduled<Void>)>()
    private var head: HTTPResponseHead?
    private var body = ByteBuffer()
    /// Set once the handler has closed the connection: why.
    private var closing: (any Error)?
    /// The connection's epoch now (nil once the connection object is gone).
    private let currentEpoch: @Sendable () -> Int?

    init(currentEpoch: @escaping @Sendable () -> Int?) {
        self.currentEpoch = currentEpoch
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let call = unwrapOutboundIn(data)
        guard context.channel.isActive, closing == nil else {
            call.answer.fail(ChannelError.ioOnClosedChannel)
            promise?.fail(ChannelError.ioOnClosedChannel)
            return
        }
        // The one place the epoch is checked: here, as the bytes go out, since a new epoch may
        // begin while a call waits for the connection.
        guard call.epoch == currentEpoch() else {
            call.answer.fail(CallConnectionError.epochEnded)
            promise?.fail(CallConnectionError.epochEnded)
            return
        }
        let timeout = call.timeout
        let timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self, weak context] in
            guard let self, let context else { return }
            self.shut(context, because: CallConnectionError.noAnswer(within: timeout))
        }
        waiting.append((call.answer, timer))
        context.write(wrapOutboundOut(.head(call.head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(call.body))), promise: nil)
        context.write(wrapOutboundOut(.end(nil)), promise: promise)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let responseHead):
            head = responseHead
            body.clear()
        case .body(let chunk):
            body.keepErrorBodyPart(chunk)
        case .end:
            guard let responseHead = head, let (answer, timer) = waiting.popFirst() else {
                shut(context, because: CallConnectionError.unexpectedAnswer)
                return
            }
            head = nil
            timer.cancel()
            // Closed before the caller hears the answer, so its next call never finds this connection.
            if !responseHead.isKeepAlive { shut(context, because: CallConnectionError.closed) }
            answer.succeed(CallConnection.Answer(status: responseHead.status, body: String(buffer: body)))
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(closing ?? CallConnectionError.closed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        shut(context, because: error)
    }

    /// Closes the connection first (so no later call is written to it), then fails every call
    /// still waiting with `reason`.
    private func shut(_ context: ChannelHandlerContext, because reason: any Error) {
        if closing == nil {
            closing = reason
            context.close(promise: nil)
        }
        failAll(reason)
    }

    private func failAll(_ error: any Error) {
        while let (answer, timer) = waiting.popFirst() {
            timer.cancel()
            answer.fail(error)
        }
    }
}

extension AgentEndpoint {
    /// Host and port of `hostAndPort` (`10.0.0.5:5051`, `[::1]:5051`, `agent:5051`); port 5051
    /// when none is given.
    var hostAndPortParts: (host: String, port: Int) {
        var text = Substring(hostAndPort)
        var port = 5051
        if let colon = text.lastIndex(of: ":"), !text[colon...].contains("]"),
            let number = Int(text[text.index(after: colon)...])
        {
            port = number
            text = text[..<colon]
        }
        if text.hasPrefix("["), text.hasSuffix("]") { text = text.dropFirst().dropLast() }
        return (String(text), port)
    }

    /// The `Host` header of a call.
    var hostHeader: String {
        if case .unixSocket = transport { return "localhost" }
        return hostAndPort
    }

    /// The name TLS sends and checks: the host unless it is an IP address.
    var tlsServerHostname: String? {
        let host = hostAndPortParts.host
        let isAddress =
            host.contains(":")
            || (host.split(separator: ".").count == 4 && host.allSatisfy { $0.isNumber || $0 == "." })
        return isAddress ? nil : host
    }
}
