import Foundation
import HTTPGet
import NIOCore
import NIOHTTP1
import NIOPosix
import Testing

/// GETs over loopback to a real HTTP server: an address (IPv4 or IPv6) is connected to as it is,
/// a name is resolved, and a refused address is named in the error.
struct HTTPGetConnectTests {
    @Test(arguments: ["127.0.0.1", "::1", "localhost"])
    func aGETReachesTheServerByAddressOrName(host: String) async throws {
        try await withEchoServer(on: host == "localhost" ? "127.0.0.1" : host) { port in
            let name = host.contains(":") ? "[\(host)]" : host
            let url = try #require(HTTPURL("http://\(name):\(port)/path?q=1"))
            let text = try await withHTTPGet(url) { response, body in
                #expect(response.status == .ok)
                var text = ""
                for try await chunk in body { text += String(buffer: chunk) }
                return text
            }
            #expect(text == "GET /path?q=1 Host: \(name):\(port)")
        }
    }

    @Test func aRefusedAddressIsNamed() async throws {
        let port = try await freePort()
        let url = try #require(HTTPURL("http://127.0.0.1:\(port)/"))
        let error = await #expect(throws: HTTPGetError.self) {
            try await withHTTPGet(url) { _, _ in }
        }
        let text = "\(error.map { "\($0)" } ?? "")"
        #expect(text.contains("127.0.0.1") && text.contains("\(port)") && text.contains("refused"), "\(text)")
    }

    /// A path with a space or a control character is refused before anything is sent (a health
    /// check's `path` comes from the task): sent as it is, CR LF would have started headers of the
    /// URL's making, and a space ended the request line early. The server sees no request.
    @Test func aPathNoRequestLineMayCarryIsRefused() async throws {
        try await withEchoServer(on: "127.0.0.1") { port in
            for target in ["/a b", "/ok HTTP/1.1\r\nX-Injected: 1\r\n\r\nGET /x", "/tab\there", "/del\u{7f}"] {
                let url = HTTPURL(secure: false, host: "127.0.0.1", port: port, target: target)
                let error = await #expect(throws: HTTPGetError.self) { try await withHTTPGet(url) { _, _ in } }
                #expect(error == .invalidTarget(target))
                #expect("\(error.map { "\($0)" } ?? "")".hasSuffix("holds a space or a control character"))
            }
            let ok = HTTPURL(secure: false, host: "127.0.0.1", port: port, target: "/a%20b")
            let text = try await withHTTPGet(ok) { _, body in
                var text = ""
                for try await chunk in body { text += String(buffer: chunk) }
                return text
            }
            #expect(text.hasPrefix("GET /a%20b "))
        }
    }

    /// A port nothing listens on: bound by a server that is closed again.
    private func freePort() async throws -> Int {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(channel.localAddress?.port)
        try await channel.close()
        return port
    }

    /// Runs `body` with the port of an HTTP/1.1 server on `host` that answers every request with
    /// its method, target and `Host` header.
    private func withEchoServer(on host: String, _ body: (Int) async throws -> Void) async throws {
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(EchoHandler())
                }
            }
            .bind(host: host, port: 0).get()
        do {
            try await body(try #require(channel.localAddress?.port))
        } catch {
            try? await channel.close()
            throw error
        }
        try await channel.close()
    }
}

private final class EchoHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private var text = ""

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            text = "\(head.method) \(head.uri) Host: \(head.headers.first(name: "Host") ?? "")"
        case .body:
            break
        case .end:
            var headers = HTTPHeaders()
            headers.add(name: "Content-Length", value: "\(text.utf8.count)")
            headers.add(name: "Connection", value: "close")
            context.write(
                wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil
            )
            context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil)
            // The request was read whole: closing after the end is written loses nothing.
            let closed = context.eventLoop.makePromise(of: Void.self)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: closed)
            closed.futureResult.whenComplete { [channel = context.channel] _ in channel.close(promise: nil) }
        }
    }
}
