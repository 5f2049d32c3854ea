import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

extension AgentEndpoint {
    /// Opens a connection to the agent, the one way both of the executor's connections are made:
    /// TCP (no Nagle delay) or the agent's unix socket, TLS over it for https, HTTP/1.1's client
    /// handlers, then what `handlers` adds. `tls` is the context for https, or why there is none
    /// (the connection then fails with that error, as each call then does).
    func connect(
        tls: Result<NIOSSLContext, any Error>?, connectTimeout: TimeAmount,
        handlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        let group = EventLoops.group
        let context: NIOSSLContext?
        switch tls {
        case .none: context = nil
        case .success(let made): context = made
        case .failure(let error): return group.next().makeFailedFuture(error)
        }
        let serverHostname = tlsServerHostname
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelInitializer(
                Self.pipeline(
                    nearestTheSocket: {
                        try context.map { try NIOSSLClientHandler(context: $0, serverHostname: serverHostname) }
                    },
                    handlers: handlers))
        switch transport {
        case .unixSocket(let path):
            return bootstrap.connect(unixDomainSocketPath: path)
        case .http, .https:
            let (host, port) = hostAndPortParts
            let tcp = bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1)
            // An address (what agents put in MESOS_AGENT_ENDPOINT) is connected to as it is. NIO's
            // resolver would hand it to getaddrinfo twice (A and AAAA) on a libdispatch thread,
            // started for that the first time, before connecting: on the way to every executor's
            // first status update, whose call opens this connection.
            switch ipAddress {
            case .v4(let address): return tcp.connect(to: SocketAddress(address, host: host))
            case .v6(let address): return tcp.connect(to: SocketAddress(address, host: host))
            case nil: return tcp.connect(host: host, port: port)
            }
        }
    }
}

extension AgentEndpoint {
    /// Takes over a socket already connected to the agent (plain HTTP or a unix socket) on which
    /// ``DirectRequest`` wrote a request, with HTTP/1.1's client handlers behind
    /// ``AlreadySentRequest``. The channel does not read until its `autoRead` is turned on: an
    /// answer may already be waiting, and must not pass the pipeline before it is complete.
    func adopt(_ socket: Int32) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: EventLoops.group)
            .channelOption(.autoRead, value: false)
            .channelInitializer(Self.pipeline(nearestTheSocket: { AlreadySentRequest() }, handlers: { _ in }))
            .withConnectedSocket(socket)
    }

    /// A connection's pipeline: the handler `nearestTheSocket` makes (if any), HTTP/1.1's client
    /// handlers, then what `handlers` adds.
    private static func pipeline(
        nearestTheSocket: @escaping @Sendable () throws -> (any ChannelHandler)?,
        handlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) -> @Sendable (any Channel) -> EventLoopFuture<Void> {
        { channel in
            channel.eventLoop.makeCompletedFuture {
                let pipeline = channel.pipeline.syncOperations
                if let first = try nearestTheSocket() { try pipeline.addHandler(first) }
                try pipeline.addHTTPClientHandlers()
                try handlers(pipeline)
            }
        }
    }
}

extension ByteBuffer {
    /// Appends what of `chunk` fits in the first 4 KiB of an answer's body: what an error message
    /// keeps of it.
    mutating func keepErrorBodyPart(_ chunk: ByteBuffer) {
        var chunk = chunk
        let room = Swift.max(0, 4096 - readableBytes)
        guard room > 0, var part = chunk.readSlice(length: Swift.min(chunk.readableBytes, room)) else { return }
        writeBuffer(&part)
    }
}
