import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SystemSupport

/// A small HTTP/1.1 file server on 127.0.0.1, port 0, with knobs for the failures a fetcher must
/// survive: stalls, connections dropped mid-body, Range support on or off, error statuses, redirects;
/// over TLS when given a context.
final class FileServer: Sendable {
    struct Behaviour: Sendable {
        /// Serve `Range: bytes=N-` with 206 and advertise `Accept-Ranges`.
        var ranges = true
        /// For the first `faultyRequests` requests: stop sending (connection left open) at this byte of the
        /// file. A request that starts at or past it (a resumed one) is not stalled.
        var stallAt: Int?
        /// For the first `faultyRequests` requests: close the connection after this many bytes.
        var dropAfter: Int?
        var faultyRequests = 1
        /// Answer with this status (no body) for the first `statusCount` requests.
        var status: HTTPResponseStatus?
        var statusCount = Int.max
    }

    private struct State {
        var files: [String: ByteBuffer] = [:]
        var redirects: [String: String] = [:]
        var behaviour: [String: Behaviour] = [:]
        var requests: [String: Int] = [:]
        var rangeRequests: [String: [String]] = [:]
        var authorizations: [String: [String]] = [:]
    }

    private let state = LockedValue(State())
    private let channel: any Channel
    let port: Int
    private let secure: Bool

    private init(channel: any Channel, secure: Bool) {
        self.channel = channel
        self.port = channel.localAddress!.port!
        self.secure = secure
    }

    /// Runs `body` with a server and closes it afterwards.
    static func with<R>(tls: NIOSSLContext? = nil, _ body: (FileServer) async throws -> R) async throws -> R {
        let holder = LockedValue<FileServer?>(nil)
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(server: holder.withLock { $0! }))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        let server = FileServer(channel: channel, secure: tls != nil)
        holder.withLock { $0 = server }
        do {
            let result = try await body(server)
            try? await channel.close()
            return result
        } catch {
            try? await channel.close()
            throw error
        }
    }

    func url(_ path: String) -> String { "\(secure ? "https" : "http")://127.0.0.1:\(port)\(path)" }

    func serve(_ path: String, _ bytes: [UInt8], behaviour: Behaviour = Behaviour()) {
        state.withLock {
            $0.files[path] = ByteBuffer(bytes: bytes)
            $0.behaviour[path] = behaviour
        }
    }

    func redirect(_ path: String, to target: String) { state.withLock { $0.redirects[path] = target } }

    /// Requests received for `path` (query string ignored).
    func requests(_ path: String) -> Int { state.withLock { $0.requests[path] ?? 0 } }

    /// The Authorization headers received for `path`.
    func authorizations(_ path: String) -> [String] { state.withLock { $0.authorizations[path] ?? [] } }

    /// The Range headers received for `path`.
    func ranges(_ path: String) -> [String] { state.withLock { $0.rangeRequests[path] ?? [] } }

    fileprivate enum Plan {
        case redirect(String)
        case status(HTTPResponseStatus)
        case body(ByteBuffer, total: Int, start: Int, ranges: Bool, stallAt: Int?, dropAfter: Int?)
        case notFound
    }

    fileprivate func plan(uri: String, range: String?, authorization: String?) -> Plan {
        let path = String(uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)[0])
        return state.withLock { state in
            let count = (state.requests[path] ?? 0) + 1
            state.requests[path] = count
            if let range { state.rangeRequests[path, default: []].append(range) }
            if let authorization { state.authorizations[path, default: []].append(authorization) }
            if let target = state.redirects[path] { return .redirect(target) }
            guard let file = state.files[path] else { return .notFound }
            let behaviour = state.behaviour[path] ?? Behaviour()
            if let status = behaviour.status, count <= behaviour.statusCount { return .status(status) }
            var start = 0
            if behaviour.ranges, let range, range.hasPrefix("bytes="),
                let first = range.dropFirst(6).split(separator: "-").first.flatMap({ Int($0) })
            {
                start = first
            }
            let faulty = count <= behaviour.faultyRequests
            return .body(
                file, total: file.readableBytes, start: start, ranges: behaviour.ranges,
                stallAt: faulty ? behaviour.stallAt : nil, dropAfter: faulty ? behaviour.dropAfter : nil)
        }
    }
}

private final class Handler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    let server: FileServer
    private var head: HTTPRequestHead?
    init(server: FileServer) { self.server = server }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head): self.head = head
        case .body: break
        case .end:
            if let head { respond(context, to: head) }
            head = nil
        }
    }

    private func respond(_ context: ChannelHandlerContext, to head: HTTPRequestHead) {
        let plan = server.plan(
            uri: head.uri, range: head.headers.first(name: "Range"),
            authorization: head.headers.first(name: "Authorization"))
        var headers = HTTPHeaders()
        switch plan {
        case .redirect(let target):
            headers.add(name: "Location", value: target)
            headers.add(name: "Content-Length", value: "0")
            respond(context, .found, headers)
        case .status(let status):
            headers.add(name: "Content-Length", value: "0")
            respond(context, status, headers)
        case .notFound:
            headers.add(name: "Content-Length", value: "0")
            respond(context, .notFound, headers)
        case .body(let file, let total, let start, let ranges, let stallAt, let dropAfter):
            let length = total - start
            headers.add(name: "Content-Length", value: "\(length)")
            headers.add(name: "ETag", value: "\"v1-\(total)\"")
            if ranges { headers.add(name: "Accept-Ranges", value: "bytes") }
            let status: HTTPResponseStatus = start > 0 ? .partialContent : .ok
            if start > 0 { headers.add(name: "Content-Range", value: "bytes \(start)-\(total - 1)/\(total)") }
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))),
                promise: nil)
            let stallCut = stallAt.flatMap { $0 > start ? $0 - start : nil }
            let cut = stallCut ?? dropAfter
            let sent = min(length, cut ?? length)
            if sent > 0 {
                context.write(
                    wrapOutboundOut(.body(.byteBuffer(file.getSlice(at: start, length: sent)!))), promise: nil)
            }
            if cut != nil && sent < length {
                context.flush()
                // A stalled server sends nothing more and keeps the connection; a dropping one closes it.
                if stallCut == nil { context.close(promise: nil) }
                return
            }
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
    }

    private func respond(_ context: ChannelHandlerContext, _ status: HTTPResponseStatus, _ headers: HTTPHeaders) {
        context.write(
            wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
