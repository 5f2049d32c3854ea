import NIOCore

/// Fails the connection with ``HTTPGetError/stalled(_:)`` when no byte arrives for `timeout` while
/// a read is wanted, once the connection has sent something (the TLS handshake's first message or
/// the request: until then the server has nothing to answer). Nearest the socket: only reads the
/// reader asked for are timed, so a reader that is slow to take what arrived (back-pressure) never
/// makes the connection look stalled. One timer, checked when it fires, rather than one per read:
/// a download reads thousands of times.
final class StallTimer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: TimeAmount
    private var timer: Scheduled<Void>?
    /// Something was sent: reads wanted from now on are timed.
    private var sent = false
    /// A read is wanted and no byte has come since this instant.
    private var waitingSince: NIODeadline?

    init(timeout: Duration) {
        self.timeout = TimeAmount(timeout)
    }

    func flush(context: ChannelHandlerContext) {
        sent = true
        if waitingSince != nil { start(context) }
        context.flush()
    }

    func read(context: ChannelHandlerContext) {
        if waitingSince == nil { waitingSince = .now() }
        if sent { start(context) }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        waitingSince = nil
        context.fireChannelRead(data)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stop()
        context.fireChannelInactive()
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        stop()
    }

    private func start(_ context: ChannelHandlerContext) {
        guard timer == nil, let since = waitingSince else { return }
        schedule(context, at: since + timeout)
    }

    private func schedule(_ context: ChannelHandlerContext, at deadline: NIODeadline) {
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.check(context)
        }
    }

    /// The timer fired: stalled if still waiting since `timeout` ago; else wait for what is left.
    /// Not waiting: the next read starts the timer again.
    private func check(_ context: ChannelHandlerContext) {
        timer = nil
        guard let since = waitingSince else { return }
        if since + timeout <= .now() {
            context.fireErrorCaught(HTTPGetError.stalled(.nanoseconds(timeout.nanoseconds)))
            context.close(promise: nil)
        } else {
            schedule(context, at: since + timeout)
        }
    }

    private func stop() {
        timer?.cancel()
        timer = nil
    }
}
