import Foundation
import MesosCodec
import MesosProto
import NIOCore
import NIOPosix

/// A response read byte by byte off the wire.
struct RawResponse {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    var text: String { String(decoding: body, as: UTF8.self) }
}

/// How a stream ended.
enum StreamEnd: Error, Equatable {
    /// The peer closed without the terminating chunk (a crashed or restarted agent).
    case abrupt
}

/// An HTTP/1.1 client over one TCP (or unix) connection that writes exactly the bytes a test
/// asks for, so every header is under the test's control.
final class RawHTTPConnection {
    private var inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator
    private let outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    private var buffer = ByteBuffer()
    private var records = ByteBuffer()
    private var decoder = RecordIODecoder()

    init(
        _ inbound: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator,
        _ outbound: NIOAsyncChannelOutboundWriter<ByteBuffer>
    ) {
        self.inbound = inbound
        self.outbound = outbound
    }

    func send(_ bytes: [UInt8]) async throws {
        try await outbound.write(ByteBuffer(bytes: bytes))
    }

    /// Writes one request; `contentType`/`accept`/`authorization` nil means the header is absent.
    func request(
        method: String = "POST",
        path: String = "/api/v1/executor",
        contentType: String? = nil,
        accept: String? = nil,
        authorization: String? = nil,
        body: [UInt8] = []
    ) async throws {
        var head = "\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if let contentType { head += "Content-Type: \(contentType)\r\n" }
        if let accept { head += "Accept: \(accept)\r\n" }
        if let authorization { head += "Authorization: \(authorization)\r\n" }
        head += "Content-Length: \(body.count)\r\n\r\n"
        try await send(Array(head.utf8) + body)
    }

    /// Reads a status line and headers.
    func readHead() async throws -> RawResponse {
        let terminator = Array("\r\n\r\n".utf8)
        while true {
            let view = Array(buffer.readableBytesView)
            if let end = view.firstRange(of: terminator) {
                let text = String(decoding: view[..<end.lowerBound], as: UTF8.self)
                buffer.moveReaderIndex(forwardBy: end.upperBound)
                var lines = text.components(separatedBy: "\r\n")
                let statusLine = lines.removeFirst().split(separator: " ")
                let headers = lines.map { line -> (name: String, value: String) in
                    let parts = line.split(separator: ":", maxSplits: 1)
                    return (String(parts[0]), parts.count > 1 ? parts[1].trimmingCharacters(in: .whitespaces) : "")
                }
                return RawResponse(status: Int(statusLine[1]) ?? -1, headers: headers, body: [])
            }
            guard try await fill() else { throw StreamEnd.abrupt }
        }
    }

    /// Reads a whole non-streaming response (Content-Length body).
    func readResponse() async throws -> RawResponse {
        var response = try await readHead()
        let length = Int(response.header("Content-Length") ?? "0") ?? 0
        while buffer.readableBytes < length {
            guard try await fill() else { throw StreamEnd.abrupt }
        }
        response.body = buffer.readBytes(length: length) ?? []
        return response
    }

    /// The next event of a SUBSCRIBE stream; nil after the terminating chunk.
    func readEvent(_ encoding: WireEncoding) async throws -> Mesos_V1_Executor_Event? {
        while true {
            if let record = try decoder.decode(buffer: &records) {
                return try encoding.decode(Mesos_V1_Executor_Event.self, from: record.readableBytesView)
            }
            guard var chunk = try await readChunk() else { return nil }
            records.writeBuffer(&chunk)
        }
    }

    /// Reads events until the stream ends cleanly (returns them) or abruptly (throws).
    func readEventsUntilEnd(_ encoding: WireEncoding) async throws -> [Mesos_V1_Executor_Event] {
        var events: [Mesos_V1_Executor_Event] = []
        while let event = try await readEvent(encoding) { events.append(event) }
        return events
    }

    /// Whether the peer closes the connection before sending anything more.
    func readsEOF() async throws -> Bool {
        if buffer.readableBytes > 0 { return false }
        return try await !fill()
    }

    private func readChunk() async throws -> ByteBuffer? {
        let line = try await readLine()
        guard let size = Int(line.split(separator: ";")[0], radix: 16) else { throw StreamEnd.abrupt }
        if size == 0 {
            _ = try await readLine()
            return nil
        }
        while buffer.readableBytes < size + 2 {
            guard try await fill() else { throw StreamEnd.abrupt }
        }
        let chunk = buffer.readSlice(length: size)!
        buffer.moveReaderIndex(forwardBy: 2)
        return chunk
    }

    private func readLine() async throws -> String {
        while true {
            let view = Array(buffer.readableBytesView)
            if let end = view.firstRange(of: Array("\r\n".utf8)) {
                buffer.moveReaderIndex(forwardBy: end.upperBound)
                return String(decoding: view[..<end.lowerBound], as: UTF8.self)
            }
            guard try await fill() else { throw StreamEnd.abrupt }
        }
    }

    private func fill() async throws -> Bool {
        do {
            guard var more = try await inbound.next() else { return false }
            buffer.writeBuffer(&more)
            return true
        } catch let error as IOError where error.errnoCode == ECONNRESET {
            return false
        }
    }
}

/// Opens a connection to the agent's TCP port (or `unixSocketPath`) for the duration of `body`.
func withConnection<Result>(
    port: Int,
    unixSocketPath: String? = nil,
    isolation: isolated (any Actor)? = #isolation,
    _ body: (RawHTTPConnection) async throws -> Result
) async throws -> Result {
    let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
    let initializer: @Sendable (any Channel) -> EventLoopFuture<NIOAsyncChannel<ByteBuffer, ByteBuffer>> = {
        channel in
        channel.eventLoop.makeCompletedFuture {
            try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
        }
    }
    let channel =
        if let unixSocketPath {
            try await bootstrap.connect(unixDomainSocketPath: unixSocketPath, channelInitializer: initializer)
        } else {
            try await bootstrap.connect(host: "127.0.0.1", port: port, channelInitializer: initializer)
        }
    return try await channel.executeThenClose { inbound, outbound in
        try await body(RawHTTPConnection(inbound.makeAsyncIterator(), outbound))
    }
}

/// One request on a fresh connection, and its response.
func roundTrip(
    port: Int,
    method: String = "POST",
    path: String = "/api/v1/executor",
    contentType: String? = nil,
    accept: String? = nil,
    authorization: String? = nil,
    body: [UInt8] = []
) async throws -> RawResponse {
    try await withConnection(port: port) { connection in
        try await connection.request(
            method: method,
            path: path,
            contentType: contentType,
            accept: accept,
            authorization: authorization,
            body: body
        )
        return try await connection.readResponse()
    }
}
