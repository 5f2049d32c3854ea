import Foundation
import NIOCore
import NIOHTTP1

/// A request part with the moment its bytes were read off the socket.
struct StampedRequestPart: Sendable {
    var part: HTTPServerRequestPart
    /// When the event loop read (and decoded) the part: for a head, the request's arrival.
    var arrived: Date
}

/// Stamps each request part where the connection's bytes are read, on its event loop, so that a
/// request's arrival is when it came off the wire, not when the task serving the connection got
/// to it (a hop to another thread later, longer when the cores are busy).
final class ArrivalStamp: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = StampedRequestPart

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(wrapInboundOut(StampedRequestPart(part: unwrapInboundIn(data), arrived: Date())))
    }
}
