public import NIOCore
public import NIOHTTP1
public import NIOPosix
import NIOSSL

/// How a GET behaves: its timeouts, redirects and certificate checks.
public struct HTTPGetOptions: Sendable {
    /// How long a connection may take (name resolution and TCP; the TLS handshake counts as reading).
    public var connectTimeout: Duration
    /// How long no byte may arrive while one is awaited before the connection is given up; nil: no limit.
    public var stallTimeout: Duration?
    /// How many redirects (301, 302, 303, 307, 308) are followed before the GET fails.
    public var maxRedirects: Int
    /// https: the server's certificate must chain to the system's trusted roots and name the host.
    public var verifiesCertificates: Bool

    public init(
        connectTimeout: Duration = .seconds(10), stallTimeout: Duration? = nil, maxRedirects: Int = 10,
        verifiesCertificates: Bool = true
    ) {
        self.connectTimeout = connectTimeout
        self.stallTimeout = stallTimeout
        self.maxRedirects = maxRedirects
        self.verifiesCertificates = verifiesCertificates
    }
}

/// The head of the answer a GET ended with (after its redirects).
public struct HTTPGetResponse: Sendable {
    public let status: HTTPResponseStatus
    public let headers: HTTPHeaders
}

/// The body of a GET's answer, read at the reader's pace: the connection reads no further than
/// the reader has taken. Iterated once; ends at the answer's end and throws ``HTTPGetError`` when
/// the connection breaks off before it.
public struct HTTPGetBody: AsyncSequence {
    public typealias Element = ByteBuffer
    fileprivate let parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator

    public func makeAsyncIterator() -> Iterator { Iterator(parts: parts) }

    public struct Iterator: AsyncIteratorProtocol {
        fileprivate var parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
        private var ended = false

        fileprivate init(parts: NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator) {
            self.parts = parts
        }

        public mutating func next() async throws(HTTPGetError) -> ByteBuffer? {
            guard !ended else { return nil }
            switch try await nextPart(&parts) {
            case .body(let bytes):
                return bytes
            case .end:
                ended = true
                return nil
            case .head:
                throw .connectionFailed("a second answer to one request")
            }
        }
    }
}

/// Sends a GET for `url` on a connection of its own (following redirects as `options` allow) and
/// runs `body` with the answer's head and body; the connection is closed when `body` returns.
/// `headers` are sent as given (`Host`, `User-Agent`, `Accept`, `Connection: close` and basic
/// authentication from the URL are added).
public func withHTTPGet<Result>(
    _ url: HTTPURL, headers: [(String, String)] = [], options: HTTPGetOptions = HTTPGetOptions(),
    on group: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
    _ body: (HTTPGetResponse, HTTPGetBody) async throws -> Result
) async throws -> Result {
    var current = url
    var visited: Set<String> = [url.description]
    var redirects = 0
    while true {
        let step: GetStep<Result> = try await exchange(current, headers: headers, options: options, group: group) {
            response, answer in
            if [301, 302, 303, 307, 308].contains(response.status.code) {
                return .redirect(response.headers.first(name: "Location") ?? "")
            }
            return .answered(try await body(response, answer))
        }
        switch step {
        case .answered(let result):
            return result
        case .redirect(let location):
            guard redirects < options.maxRedirects else { throw HTTPGetError.tooManyRedirects(options.maxRedirects) }
            guard !location.isEmpty, let next = current.resolving(location) else {
                throw HTTPGetError.badRedirect(location)
            }
            guard visited.insert(next.description).inserted else { throw HTTPGetError.redirectLoop(next.description) }
            redirects += 1
            current = next
        }
    }
}

private enum GetStep<Result> {
    case answered(Result)
    case redirect(String)
}

/// One request and its answer on a new connection.
private func exchange<Result>(
    _ url: HTTPURL, headers extra: [(String, String)], options: HTTPGetOptions, group: any EventLoopGroup,
    _ body: (HTTPGetResponse, HTTPGetBody) async throws -> Result
) async throws -> Result {
    // Sent as it is, a space or CR LF would end the request line early (and what follows become
    // headers or a request of its own).
    guard !url.target.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) else {
        throw HTTPGetError.invalidTarget(url.target)
    }
    let channel = try await connect(url, options: options, group: group)
    return try await channel.executeThenClose { inbound, outbound in
        var headers = HTTPHeaders()
        headers.add(name: "Host", value: url.hostHeader)
        headers.add(name: "User-Agent", value: "spark-mesos-executor")
        headers.add(name: "Accept", value: "*/*")
        headers.add(name: "Connection", value: "close")
        if let credentials = url.credentials {
            headers.add(name: "Authorization", value: "Basic " + base64(Array(credentials.utf8)))
        }
        headers.add(contentsOf: extra)
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: url.target, headers: headers)
        var parts = inbound.makeAsyncIterator()
        do {
            try await outbound.write(contentsOf: [.head(head), .end(nil)])
        } catch {
            // A failed TLS handshake fails the write as well: what the connection read says why.
            _ = try await nextPart(&parts)
            throw HTTPGetError.connectionFailed("\(error)")
        }
        guard case .head(let answer) = try await nextPart(&parts) else {
            throw HTTPGetError.connectionFailed("an answer without a head")
        }
        return try await body(
            HTTPGetResponse(status: answer.status, headers: answer.headers), HTTPGetBody(parts: parts))
    }
}

private func nextPart(
    _ parts: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator
) async throws(HTTPGetError) -> HTTPClientResponsePart {
    do {
        guard let part = try await parts.next() else { throw HTTPGetError.closedEarly }
        return part
    } catch let error as HTTPGetError {
        throw error
    } catch HTTPParserError.invalidEOFState {
        throw .closedEarly
    } catch {
        throw .connectionFailed("\(error)")
    }
}

private func connect(
    _ url: HTTPURL, options: HTTPGetOptions, group: any EventLoopGroup
) async throws(HTTPGetError) -> NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart> {
    let tls: NIOSSLContext?
    if url.secure {
        switch options.verifiesCertificates ? TLSContexts.verifying : TLSContexts.trusting {
        case .success(let context): tls = context
        case .failure(let error): throw .connectFailed("TLS cannot be set up: \(error)")
        }
    } else {
        tls = nil
    }
    let serverName = url.hostIsAddress ? nil : url.host
    // Reads grow up to 256 KiB when the data is there (a download), so a large body costs few
    // trips through the decoder and to the reader.
    let bootstrap = ClientBootstrap(group: group).connectTimeout(TimeAmount(options.connectTimeout))
        .channelOption(
            .recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 1024, initial: 16_384, maximum: 262_144))
    typealias Connection = NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
    let initializer: @Sendable (any Channel) -> EventLoopFuture<Connection> = { channel in
        channel.eventLoop.makeCompletedFuture {
            let pipeline = channel.pipeline.syncOperations
            if let stall = options.stallTimeout { try pipeline.addHandler(StallTimer(timeout: stall)) }
            if let tls { try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName)) }
            try pipeline.addHTTPClientHandlers()
            return try Connection(wrappingChannelSynchronously: channel)
        }
    }
    do {
        // An address is connected to as it is (a health probe's 127.0.0.1, say): NIO's resolver
        // would hand it to getaddrinfo twice (A and AAAA) on a libdispatch thread first.
        if url.hostIsAddress, let address = try? SocketAddress(ipAddress: url.host, port: url.port) {
            do {
                return try await bootstrap.connect(to: address, channelInitializer: initializer)
            } catch let error as IOError {
                throw HTTPGetError.connectFailed("\(address): \(error)")
            }
        }
        return try await bootstrap.connect(host: url.host, port: url.port, channelInitializer: initializer)
    } catch let error as HTTPGetError {
        throw error
    } catch ChannelError.connectTimeout {
        throw .connectTimeout(options.connectTimeout)
    } catch let error as NIOConnectionError {
        if error.connectionErrors.isEmpty {
            throw .connectFailed("cannot resolve \(url.host)")
        }
        throw .connectFailed(error.connectionErrors.map { "\($0.target): \($0.error)" }.joined(separator: "; "))
    } catch {
        throw .connectFailed("\(error)")
    }
}

/// TLS client contexts, made by the first https GET that needs one (loading the trusted roots).
private enum TLSContexts {
    static let verifying = Result<NIOSSLContext, any Error> {
        try NIOSSLContext(configuration: .makeClientConfiguration())
    }
    static let trusting = Result<NIOSSLContext, any Error> {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.certificateVerification = .none
        return try NIOSSLContext(configuration: configuration)
    }
}

/// RFC 4648 base64 with padding.
private func base64(_ bytes: [UInt8]) -> String {
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    var out: [UInt8] = []
    out.reserveCapacity((bytes.count + 2) / 3 * 4)
    var index = 0
    while index < bytes.count {
        let chunk = bytes[index..<min(index + 3, bytes.count)]
        let value = chunk.enumerated().reduce(UInt32(0)) { $0 | UInt32($1.element) << (16 - 8 * UInt32($1.offset)) }
        for position in 0..<4 {
            out.append(
                position <= chunk.count ? alphabet[Int(value >> (18 - 6 * UInt32(position)) & 63)] : UInt8(ascii: "="))
        }
        index += 3
    }
    return String(decoding: out, as: UTF8.self)
}
