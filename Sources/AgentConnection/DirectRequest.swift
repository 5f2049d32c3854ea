import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#endif

/// A request written to the agent by the calling thread itself, with three system calls, before
/// NIO takes the connection over to read the answer: how a starting executor's first SUBSCRIBE
/// reaches the agent without waiting for the event loop to make its first connection
/// (Tests/Benchmarks/HISTORY.md). Plain HTTP only, to an agent given by an IP address or a unix
/// socket; anything else, or a connection that is not made at once, is left to NIO (nil).
enum DirectRequest {
    /// How long the calling thread waits for the connection to be made before leaving it to NIO.
    static let patience: Int32 = 50

    /// A connected socket (close-on-exec, non-blocking) to `endpoint` with `request` and `body`
    /// written on it whole, or nil when that could not be done here (nothing of the request is
    /// then on the wire of an open connection: a socket written in part is closed).
    static func send(_ request: HTTPRequestHead, body: ByteBuffer, to endpoint: AgentEndpoint) -> Int32? {
        guard let fd = connect(endpoint) else { return nil }
        let bytes = serialize(request, body: body)
        var written = 0
        while written < bytes.count {
            let count = bytes.withUnsafeBytes { raw in
                Glibc.send(fd, raw.baseAddress! + written, raw.count - written, Int32(MSG_NOSIGNAL))
            }
            if count > 0 {
                written += count
            } else if count < 0 && errno == EINTR {
                continue
            } else if count < 0 && errno == EAGAIN && wait(fd, for: Int16(POLLOUT)) {
                continue
            } else {
                close(fd)
                return nil
            }
        }
        return fd
    }

    /// A non-blocking socket connected to `endpoint` within ``patience``, or nil.
    private static func connect(_ endpoint: AgentEndpoint) -> Int32? {
        var storage = sockaddr_storage()
        /// Puts `address` into `storage`; returns its length.
        func store<Address>(_ address: Address) -> socklen_t {
            withUnsafeMutableBytes(of: &storage) { target in
                withUnsafeBytes(of: address) { target.copyMemory(from: $0) }
            }
            return socklen_t(MemoryLayout<Address>.size)
        }
        let length: socklen_t
        let family: Int32
        switch endpoint.transport {
        case .https:
            return nil
        case .unixSocket(let path):
            var address = sockaddr_un()
            address.sun_family = sa_family_t(AF_UNIX)
            let bytes = Array(path.utf8)
            guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
            withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
            (length, family) = (store(address), AF_UNIX)
        case .http:
            switch endpoint.ipAddress {
            case .v4(let address): (length, family) = (store(address), AF_INET)
            case .v6(let address): (length, family) = (store(address), AF_INET6)
            // A host name: resolving it may block; NIO does that.
            case nil: return nil
            }
        }
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        if family != AF_UNIX {
            var on: Int32 = 1
            _ = setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, socklen_t(MemoryLayout<Int32>.size))
        }
        let rc = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, length) }
        }
        if rc == 0 { return fd }
        guard errno == EINPROGRESS, wait(fd, for: Int16(POLLOUT)) else {
            close(fd)
            return nil
        }
        var failure: Int32 = 0
        var size = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ERROR, &failure, &size) == 0, failure == 0 else {
            close(fd)
            return nil
        }
        return fd
    }

    /// Waits at most ``patience`` for `events` on `fd`.
    private static func wait(_ fd: Int32, for events: Int16) -> Bool {
        var entry = pollfd(fd: fd, events: events, revents: 0)
        while true {
            let rc = poll(&entry, 1, patience)
            if rc < 0 && errno == EINTR { continue }
            return rc == 1 && entry.revents & events != 0 && entry.revents & Int16(POLLERR | POLLHUP) == 0
        }
    }

    /// The request as HTTP/1.1 puts it on the wire (its headers as given: Content-Length among them).
    private static func serialize(_ request: HTTPRequestHead, body: ByteBuffer) -> [UInt8] {
        var text = "\(request.method.rawValue) \(request.uri) HTTP/1.1\r\n"
        for (name, value) in request.headers { text += "\(name): \(value)\r\n" }
        text += "\r\n"
        return Array(text.utf8) + body.readableBytesView
    }
}

/// Drops what the pipeline writes before its first flush: the request ``DirectRequest`` already
/// wrote, passed through the HTTP handlers once more so that the answer's decoder knows what it
/// answers. Then it leaves the pipeline.
final class AlreadySentRequest: ChannelOutboundHandler, RemovableChannelHandler {
    typealias OutboundIn = IOData

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        promise?.succeed(())
    }

    func flush(context: ChannelHandlerContext) {
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}
