import Foundation
import Glibc
public import NIOCore

/// A socket something listens on, and, for TCP, the descriptor underneath it: the agent's own, and
/// any server a test runs beside an executor (a health check's target).
///
/// The TCP socket is made here (rather than by NIO) to keep its descriptor, because closing a
/// listener must end the *socket*, and closing our descriptor only ends our reference: a child
/// process another thread is starting holds copies of every descriptor between its fork and its
/// exec. A closed listener could then keep listening for a while (connections queue behind a port
/// that should refuse them) and listening there again fails with EADDRINUSE. ``close()`` shuts the
/// socket down first, which stops it listening whoever else holds it.
public struct ListeningSocket: Sendable {
    public let channel: any Channel
    /// The TCP socket's descriptor; nil for a unix domain socket.
    public let descriptor: CInt?

    /// Wraps a channel NIO made from ``makeTCP(host:port:backlog:)``'s descriptor (or a unix socket's).
    public init(channel: any Channel, descriptor: CInt?) {
        self.channel = channel
        self.descriptor = descriptor
    }

    /// A non-blocking, close-on-exec TCP socket bound to `host:port` with SO_REUSEADDR, listening;
    /// hand it to NIO (`ServerBootstrap.bind(_:)` / `withBoundSocket(_:)`), which then owns it.
    ///
    /// Port 0 means a free port below the kernel's ephemeral range, not one from it: while nothing
    /// listens there (an agent restarting, a target made unhealthy), a connection to it may
    /// otherwise be given that very port as its source port and connect to itself (TCP
    /// self-connect), and the port could not be listened on again.
    public static func makeTCP(host: String, port: Int, backlog: CInt = 256) throws -> CInt {
        if port == 0, let below = ephemeralPortsStart(), below > 10_000 {
            for _ in 0..<64 {
                if let descriptor = try? bound(host: host, port: Int.random(in: 10_000..<below), backlog: backlog) {
                    return descriptor
                }
            }
        }
        return try bound(host: host, port: port, backlog: backlog)
    }

    /// ``makeTCP(host:port:backlog:)`` for a port listened on before (an agent coming back): while
    /// the port is still in use, tried again for up to `patience`. Whatever still listens there is
    /// leaving: a copy of the old socket in a child process between its fork and its exec, say.
    public static func makeTCP(host: String, port: Int, backlog: CInt = 256, patience: Duration) async throws -> CInt {
        let deadline = ContinuousClock.now + patience
        var pause = Duration.milliseconds(1)
        while true {
            do {
                return try makeTCP(host: host, port: port, backlog: backlog)
            } catch let error as IOError where error.errnoCode == EADDRINUSE && ContinuousClock.now < deadline {
                try await Task.sleep(for: pause)
                pause = min(pause * 2, .milliseconds(50))
            }
        }
    }

    /// Stops the socket listening (pending connections are reset and new ones refused, whoever
    /// holds a copy of the descriptor), then closes the channel. Runs on the channel's event loop,
    /// where the descriptor is known to be still the channel's.
    public func close() -> EventLoopFuture<Void> {
        channel.eventLoop.flatSubmit {
            if let descriptor, channel.isActive { _ = shutdown(descriptor, CInt(SHUT_RDWR)) }
            return channel.close()
        }
    }

    private static func bound(host: String, port: Int, backlog: CInt) throws -> CInt {
        let address = try SocketAddress.makeAddressResolvingHost(host, port: port)
        let type = CInt(SOCK_STREAM.rawValue) | CInt(SOCK_CLOEXEC.rawValue) | CInt(SOCK_NONBLOCK.rawValue)
        let descriptor = socket(address.protocol.rawValue, type, 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var one: CInt = 1
        let failedStep: String? =
            if setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<CInt>.size)) != 0 {
                "setsockopt(SO_REUSEADDR)"
            } else if address.withSockAddr({ bind(descriptor, $0, socklen_t($1)) }) != 0 {
                "bind \(host):\(port)"
            } else if listen(descriptor, backlog) != 0 {
                "listen \(host):\(port)"
            } else {
                nil
            }
        guard let failedStep else { return descriptor }
        let code = errno
        Glibc.close(descriptor)
        throw IOError(errnoCode: code, reason: failedStep)
    }

    /// The first port of the kernel's ephemeral range (`ip_local_port_range`), when readable.
    private static func ephemeralPortsStart() -> Int? {
        let text = try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)
        return text?.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { Int($0) }
    }
}
