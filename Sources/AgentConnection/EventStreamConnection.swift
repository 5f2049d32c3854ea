import NIOCore
import NIOHTTP1
import NIOSSL
import SystemSupport

/// SUBSCRIBE's connection: one POST whose answer, once 200, is the event stream (a chunked body
/// of RecordIO records) for as long as the connection lasts. It is never shared: a call pipelined
/// behind SUBSCRIBE would never be answered.
///
/// Written on NIO directly, like ``CallConnection``: in a freshly started executor,
/// async-http-client took about 2.5 ms from being handed SUBSCRIBE to its bytes on the wire (its
/// first request builds a connection pool, a transaction and their state machines, much of it the
/// Swift runtime's first lookups of their types), a third of the executor's start-up.
enum EventStreamConnection {
    /// Connects, sends the request and succeeds with the answer's head and its body, or fails when
    /// there is no connection or no answer within `answerTimeout`. Begun at once, on the event loop:
    /// nothing waits for it to be awaited (see ``AgentClient/beginSubscribe(_:)``). Connections
    /// still open are closed by `open.closeAll()`.
    ///
    /// `direct`: the calling thread connects and writes the request itself where it can (see
    /// ``DirectRequest``), and NIO takes the connection over to read the answer.
    static func open(
        _ endpoint: AgentEndpoint, tls: Result<NIOSSLContext, any Error>?, connectTimeout: TimeAmount,
        request: HTTPRequestHead, body: ByteBuffer, answerTimeout: TimeAmount, tracking open: OpenEventStreams,
        direct: Bool = false
    ) -> EventLoopFuture<(HTTPResponseHead, EventStreamBody)> {
        let connecting: EventLoopFuture<any Channel>
        let adopted: Bool
        if direct, tls == nil, let socket = DirectRequest.send(request, body: body, to: endpoint) {
            connecting = endpoint.adopt(socket)
            adopted = true
        } else {
            connecting = endpoint.connect(tls: tls, connectTimeout: connectTimeout) { _ in }
            adopted = false
        }
        return connecting.flatMap { channel in
            open.add(channel)
            let answer = channel.eventLoop.makePromise(of: HTTPResponseHead.self)
            let handler = EventStreamHandler(answer: answer)
            do {
                try channel.pipeline.syncOperations.addHandler(handler)
            } catch {
                channel.close(promise: nil)
                return channel.eventLoop.makeFailedFuture(error)
            }
            // The answer's head is awaited this long; the stream after it as long as it lasts.
            let timer = channel.eventLoop.scheduleTask(in: answerTimeout) {
                answer.fail(EventStreamError.noAnswer(within: answerTimeout))
                channel.close(promise: nil)
            }
            answer.futureResult.whenComplete { _ in timer.cancel() }
            channel.write(HTTPClientRequestPart.head(request), promise: nil)
            channel.write(HTTPClientRequestPart.body(.byteBuffer(body)), promise: nil)
            channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
            if adopted {
                // The answer's decoder has seen the request: the answer may be read now.
                do {
                    guard let options = channel.syncOptions else { throw ChannelError.operationUnsupported }
                    try options.setOption(.autoRead, value: true)
                } catch {
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            let streamBody = EventStreamBody(channel: channel, parts: handler.takeParts())
            return answer.futureResult.map { ($0, streamBody) }
        }
    }
}

/// The event-stream connections not yet closed, so that the client closes them when it ends.
final class OpenEventStreams: Sendable {
    private let channels = LockedValue<[ObjectIdentifier: any Channel]>([:])

    func add(_ channel: any Channel) {
        let key = ObjectIdentifier(channel)
        channels.withLock { $0[key] = channel }
        channel.closeFuture.whenComplete { [self] _ in channels.withLock { _ = $0.removeValue(forKey: key) } }
    }

    func closeAll() async {
        for channel in channels.withLock({ Array($0.values) }) { try? await channel.close() }
    }
}

/// The body of SUBSCRIBE's answer: the response parts after its head, read once. The connection
/// is closed once nothing refers to this any more.
final class EventStreamBody: Sendable {
    typealias Parts = NIOThrowingAsyncSequenceProducer<
        HTTPClientResponsePart, any Error, NIOAsyncSequenceProducerBackPressureStrategies.HighLowWatermark,
        EventStreamHandler.Demand
    >

    private let channel: any Channel
    private let parts: Parts
    private let taken = LockedValue(false)

    init(channel: any Channel, parts: Parts) {
        self.channel = channel
        self.parts = parts
    }

    deinit { channel.close(promise: nil) }

    /// Closes the connection now (it is closed when this body is gone otherwise).
    func close() async {
        try? await channel.close()
    }

    /// The parts after the head, to read; nil once they were taken.
    func takeParts() -> Parts.AsyncIterator? {
        let first = taken.withLock { taken in
            defer { taken = true }
            return !taken
        }
        return first ? parts.makeAsyncIterator() : nil
    }

    /// The rest of the body as text (up to 4 KiB), for an error answer's message.
    func collectText() async -> String {
        guard let parts = takeParts() else { return "" }
        var collected = ByteBuffer()
        do {
            while let part = try await parts.next() {
                if case .end = part { break }
                if case .body(let chunk) = part { collected.keepErrorBodyPart(chunk) }
            }
        } catch {
            // A broken error body still leaves the status to report.
        }
        return String(buffer: collected)
    }
}

/// Why the event stream's connection gave no (more) events.
struct EventStreamError: Error, CustomStringConvertible {
    var description: String

    static let closedBeforeAnswer = Self(description: "the agent closed the connection before answering")
    static let brokeOff = Self(description: "the connection closed in the middle of the event stream")
    static let secondAnswer = Self(description: "the agent sent a second answer on the event stream")
    static let readTwice = Self(description: "the event stream was already being read")
    static func noAnswer(within timeout: TimeAmount) -> Self {
        Self(description: "no answer within \(timeout.nanoseconds / 1_000_000) ms")
    }
}

/// The end of the event stream's pipeline: hands the answer's head to the caller waiting for it
/// and the parts after it to the stream's reader, reading from the socket only while the reader
/// keeps up (a reader that falls behind leaves the rest in the kernel, and the agent waits).
final class EventStreamHandler: ChannelDuplexHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundIn = Never

    /// The reader's demand, told to the handler on its event loop.
    struct Demand: NIOAsyncSequenceProducerDelegate {
        let eventLoop: any EventLoop
        let handler: NIOLoopBound<EventStreamHandler>

        func produceMore() {
            eventLoop.execute { handler.value.readerWantsMore() }
        }

        func didTerminate() {
            eventLoop.execute { handler.value.readerGone() }
        }
    }

    private let answer: EventLoopPromise<HTTPResponseHead>
    private var answered = false
    private var source: EventStreamBody.Parts.Source?
    /// What the reader reads, until `takeParts()` hands it over (the handler must not keep it: the
    /// sequence refers to the handler through its demand).
    private var parts: EventStreamBody.Parts?
    private var context: ChannelHandlerContext?
    private var received: [HTTPClientResponsePart] = []
    private var paused = false
    private var readWanted = false

    init(answer: EventLoopPromise<HTTPResponseHead>) {
        self.answer = answer
        let eventLoop = answer.futureResult.eventLoop
        let demand = Demand(eventLoop: eventLoop, handler: NIOLoopBound(self, eventLoop: eventLoop))
        let made = EventStreamBody.Parts.makeSequence(
            backPressureStrategy: .init(lowWatermark: 2, highWatermark: 16), finishOnDeinit: false, delegate: demand)
        source = made.source
        parts = made.sequence
    }

    func takeParts() -> EventStreamBody.Parts {
        defer { parts = nil }
        return parts!
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.context = nil
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if !answered, case .head(let head) = part {
            answered = true
            answer.succeed(head)
            return
        }
        received.append(part)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        deliver()
        context.fireChannelReadComplete()
    }

    func read(context: ChannelHandlerContext) {
        if paused {
            readWanted = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !answered { answer.fail(EventStreamError.closedBeforeAnswer) }
        deliver()
        source?.finish()
        source = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        if !answered { answer.fail(error) }
        deliver()
        source?.finish(error)
        source = nil
        context.close(promise: nil)
    }

    private func deliver() {
        guard !received.isEmpty, let source else { return }
        let parts = received
        received.removeAll(keepingCapacity: true)
        if case .stopProducing = source.yield(contentsOf: parts) { paused = true }
    }

    fileprivate func readerWantsMore() {
        paused = false
        if readWanted, let context {
            readWanted = false
            context.read()
        }
    }

    /// The reader stopped reading (the stream and its iterator are gone): nothing more is wanted.
    fileprivate func readerGone() {
        source = nil
        context?.close(promise: nil)
    }
}
