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
        let group = MultiThreadedEventLoopGroup.singleton
        let context: NIOSSLContext?
        switch tls {
        case .none: context = nil
        case .success(let made): context = made
        case .failure(let error): return group.next().makeFailedFuture(error)
        }
        let serverHostname = tlsServerHostname
        let bootstrap = ClientBootstrap(group: group)
            .connectTimeout(connectTimeout)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    if let context {
                        try pipeline.addHandler(
                            try NIOSSLClientHandler(context: context, serverHostname: serverHostname))
                    }
                    try pipeline.addHTTPClientHandlers()
                    try handlers(pipeline)
                }
            }
        switch transport {
        case .unixSocket(let path):
            return bootstrap.connect(unixDomainSocketPath: path)
        case .http, .https:
            let (host, port) = hostAndPortParts
            return bootstrap.channelOption(.tcpOption(.tcp_nodelay), value: 1).connect(host: host, port: port)
        }
    }
}

extension AgentEndpoint {
    /// Takes over a socket already connected to the agent (plain HTTP or a unix socket) with the
    /// same handlers ``connect(tls:connectTimeout:handlers:)`` gives a connection it makes, after
    /// `first` (nearest the socket). The channel does not read until its `autoRead` is turned on:
    /// an answer may already be waiting, and must not pass the pipeline before it is complete.
    func adopt(
        _ socket: Int32, first: @escaping @Sendable () -> any ChannelHandler,
        handlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) -> EventLoopFuture<any Channel> {
        ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(.autoRead, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(first())
                    try pipeline.addHTTPClientHandlers()
                    try handlers(pipeline)
                }
            }
            .withConnectedSocket(socket)
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
