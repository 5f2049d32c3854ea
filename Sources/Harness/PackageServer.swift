import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// Serves one file (the package) over HTTP on 127.0.0.1, port 0, for as long as a scope runs,
/// so the executor fetches it exactly as it would from a real HTTP server.
final class PackageServer: Sendable {
    private let bytes: ByteBuffer
    private let name: String
    private let downloads = Mutex(0)
    private let port = Mutex(0)

    private init(name: String, bytes: [UInt8]) {
        self.name = name
        self.bytes = ByteBuffer(bytes: bytes)
    }

    /// The URL the package is served at.
    var url: String { "http://127.0.0.1:\(port.withLock { $0 })/\(name)" }

    /// How many complete GET responses were sent.
    var downloadCount: Int { downloads.withLock { $0 } }

    /// Runs `body` while `bytes` are served under `/name`; closes the server afterwards.
    static func with<R>(
        name: String, bytes: [UInt8], isolation: isolated (any Actor)? = #isolation,
        _ body: (PackageServer) async throws -> R
    ) async throws -> R {
        let server = PackageServer(name: name, bytes: bytes)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(PackageHandler(server: server))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        server.port.withLock { $0 = channel.localAddress?.port ?? 0 }
        do {
            let result = try await body(server)
            try? await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    fileprivate func response(for head: HTTPRequestHead) -> (HTTPResponseStatus, ByteBuffer?) {
        let path = head.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0]
        guard path == "/\(name)" else { return (.notFound, nil) }
        guard head.method == .GET || head.method == .HEAD else { return (.methodNotAllowed, nil) }
        if head.method == .GET { downloads.withLock { $0 += 1 } }
        return (.ok, head.method == .GET ? bytes : nil)
    }

    fileprivate var size: Int { bytes.readableBytes }
}

private final class PackageHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: PackageServer
    private var head: HTTPRequestHead?

    init(server: PackageServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            guard let head else { return }
            self.head = nil
            let (status, body) = server.response(for: head)
            var headers = HTTPHeaders()
            let length = status == .ok ? server.size : 0
            headers.add(name: "Content-Length", value: "\(length)")
            headers.add(name: "Content-Type", value: "application/octet-stream")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: head.version, status: status, headers: headers))),
                promise: nil)
            if let body { context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil) }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }
}
