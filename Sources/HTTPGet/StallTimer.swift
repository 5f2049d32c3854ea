import NIOCore

/// Fails the connection with ``HTTPGetError/stalled(_:)`` when no byte arrives for `timeout` while
/// a read is wanted, once the connection has sent something (the TLS handshake's first message or
/// the request: until then the server has nothing to answer). Nearest the socket: only reads the
/// reader asked for are timed, so a reader that is slow to take what arrived (back-pressure) never
/// makes the connection look stalled.
final class StallTimer: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let timeout: Duration
    private var timer: Scheduled<Void>?
    /// Something was sent: reads wanted from now on are timed.
    private var sent = false
    /// A read is wanted and no byte has come since.
    private var waiting = false

    init(timeout: Duration) {
        self.timeout = timeout
    }

    func flush(context: ChannelHandlerContext) {
        sent = true
        if waiting { start(context) }
        context.flush()
    }

    func read(context: ChannelHandlerContext) {
        waiting = true
        if sent { start(context) }
        context.read()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        waiting = false
        stop()
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
        guard timer == nil else { return }
        let bound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let timeout = self.timeout
        timer = context.eventLoop.scheduleTask(in: TimeAmount(timeout)) {
            let context = bound.value
            context.fireErrorCaught(HTTPGetError.stalled(timeout))
            context.close(promise: nil)
        }
    }

    private func stop() {
        timer?.cancel()
        timer = nil
    }
}
