import AgentConnection
import Foundation
import MesosCodec
import MesosProto
import NIOCore
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// SUBSCRIBE's connection against an agent on a raw socket, for what the local agent cannot do.
@Suite(.timeLimit(.minutes(2)))
struct EventStreamConnectionTests {
    private static var subscribe: Mesos_V1_Executor_Call {
        var call = Mesos_V1_Executor_Call()
        call.type = .subscribe
        call.frameworkID.value = "f"
        call.executorID.value = "e"
        call.subscribe = .init()
        return call
    }

    /// The event stream is read at the executor's pace: an executor that stops reading events
    /// leaves the rest in the kernel, so an agent writing faster than it reads is held back (TCP),
    /// and none is lost.
    @Test func aReaderThatStopsHoldsTheAgentBackAndLosesNothing() async throws {
        let agent = try RawAgent()
        let flood = agent.flood(limit: 256 << 20)
        let configuration = AgentClientConfiguration(endpoint: AgentEndpoint(hostAndPort: "127.0.0.1:\(agent.port)"))
        try await withAgentClient(configuration) { client in
            let stream = try await client.subscribe(Self.subscribe)
            // Nothing is read while the agent writes: what it could write is what the kernel's
            // socket buffers hold plus the little the client reads ahead (a few MiB), far below
            // the 256 MiB it would write to a client that read everything.
            var results = flood.makeAsyncIterator()
            let written = try #require(await results.next())
            #expect(written.bytes < 64 << 20, "the agent wrote \(written.bytes) bytes to a reader that read none")
            var count = 0
            for try await event in stream {
                #expect(event.type == .message && event.message.data.count == 1024)
                count += 1
            }
            #expect(count == written.events)
        }
    }

    /// An agent that takes SUBSCRIBE and never answers it: the call fails once its timeout is over,
    /// as one the agent refuses would, and can be tried again.
    @Test func aSubscribeTheAgentNeverAnswersFailsAfterTheCallTimeout() async throws {
        let agent = try RawAgent()
        let silence = agent.acceptAndStaySilent()
        var configuration = AgentClientConfiguration(endpoint: AgentEndpoint(hostAndPort: "127.0.0.1:\(agent.port)"))
        configuration.callTimeout = .milliseconds(200)
        try await withAgentClient(configuration) { client in
            let error = try #require(await failure { _ = try await client.subscribe(Self.subscribe) })
            #expect(error.isRetryable)
            #expect("\(error)" == "SUBSCRIBE could not reach the agent: no answer within 200 ms", "\(error)")
        }
        // The agent saw the connection closed.
        var ends = silence.makeAsyncIterator()
        #expect(await ends.next() == true)
    }

    /// A SUBSCRIBE begun early is connected and written by the calling thread itself, and the
    /// event loop takes the connection over afterwards: an answer already waiting by then (this
    /// agent answers the moment it accepts) is read whole, and the agent got one request, as the
    /// event loop would have written it.
    @Test func anAnswerWaitingBeforeTheEventLoopHasTheConnectionIsReadWhole() async throws {
        let agent = try RawAgent()
        let requests = agent.answerAtOnce(events: 3)
        let configuration = AgentClientConfiguration(endpoint: AgentEndpoint(hostAndPort: "127.0.0.1:\(agent.port)"))
        try await withAgentClient(configuration) { client in
            client.beginSubscribe(Self.subscribe)
            let stream = try await client.subscribe(Self.subscribe)
            var count = 0
            for try await event in stream {
                #expect(event.type == .message && event.message.data.count == 1024)
                count += 1
            }
            #expect(count == 3)
        }
        var received = requests.makeAsyncIterator()
        let request = try #require(await received.next())
        #expect(request.head.hasPrefix("POST /api/v1/executor HTTP/1.1\r\n"), "\(request.head)")
        #expect(request.head.lowercased().contains("content-type: application/x-protobuf\r\n"), "\(request.head)")
        #expect(try WireEncoding.protobuf.decode(Mesos_V1_Executor_Call.self, from: request.body) == Self.subscribe)
        #expect(request.more.isEmpty, "the agent got more than one request: \(request.more)")
    }
}

/// An agent on a raw socket, for one connection.
private final class RawAgent: Sendable {
    let port: Int
    private let listener: Int32

    init() throws {
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(listener, $0, length) == 0 && listen(listener, 1) == 0 && getsockname(listener, $0, &length) == 0
            }
        }
        try #require(bound, "listening failed: errno \(errno)")
        self.listener = listener
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(listener) }

    /// Accepts the connection, reads until it is closed and tells whether it was.
    func acceptAndStaySilent() -> AsyncStream<Bool> {
        let listener = self.listener
        let (closed, continuation) = AsyncStream.makeStream(of: Bool.self)
        Thread.detachNewThread {
            let connection = accept(listener, nil, nil)
            defer { close(connection) }
            var buffer = [UInt8](repeating: 0, count: 4096)
            while read(connection, &buffer, buffer.count) > 0 {}
            continuation.yield(connection >= 0)
            continuation.finish()
        }
        return closed
    }

    /// Accepts a connection and at once, before reading anything, answers 200 with `events`
    /// MESSAGEs of 1 KiB and the stream's end; then reads the request (its head, its body, and
    /// whatever came after it until the client closed) and tells what it was.
    func answerAtOnce(events: Int) -> AsyncStream<(head: String, body: [UInt8], more: [UInt8])> {
        let listener = self.listener
        let (requests, continuation) = AsyncStream.makeStream(of: (head: String, body: [UInt8], more: [UInt8]).self)
        Thread.detachNewThread {
            let connection = accept(listener, nil, nil)
            defer { close(connection) }
            var message = Mesos_V1_Executor_Event()
            message.type = .message
            message.message.data = Data(repeating: 0x2a, count: 1024)
            var records = ByteBuffer()
            let record = try! WireEncoding.protobuf.encode(message)
            for _ in 0..<events { RecordIO.encode(record, into: &records) }
            Self.send(
                Array(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n"
                        .utf8) + Array(String(records.readableBytes, radix: 16).utf8) + Array("\r\n".utf8)
                    + Array(records.readableBytesView) + Array("\r\n0\r\n\r\n".utf8),
                to: connection)
            let (text, body) = Self.readRequest(from: connection)
            var more: [UInt8] = []
            var chunk = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(connection, &chunk, chunk.count)
                if count <= 0 { break }
                more += chunk[0..<count]
            }
            continuation.yield((text, body, more))
            continuation.finish()
        }
        return requests
    }

    /// Accepts the SUBSCRIBE, answers 200 and floods the stream with MESSAGEs of 1 KiB until the client stops taking them
    /// (no room in the socket for 2 s) or `limit` bytes went out; then tells what it wrote and ends
    /// the stream (blocking, so all of it is delivered once the client reads).
    func flood(limit: Int) -> AsyncStream<(bytes: Int, events: Int)> {
        let listener = self.listener
        let (written, continuation) = AsyncStream.makeStream(of: (bytes: Int, events: Int).self)
        Thread.detachNewThread {
            let connection = accept(listener, nil, nil)
            defer { close(connection) }
            // The request (read and ignored).
            _ = Self.readRequest(from: connection)
            Self.send(
                Array(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuf\r\nTransfer-Encoding: chunked\r\n\r\n"
                        .utf8),
                to: connection)
            var message = Mesos_V1_Executor_Event()
            message.type = .message
            message.message.data = Data(repeating: 0x2a, count: 1024)
            var records = ByteBuffer()
            let perChunk = 64
            let record = try! WireEncoding.protobuf.encode(message)
            for _ in 0..<perChunk { RecordIO.encode(record, into: &records) }
            let chunk =
                Array(String(records.readableBytes, radix: 16).utf8) + Array("\r\n".utf8)
                + Array(records.readableBytesView) + Array("\r\n".utf8)
            var written = 0
            var events = 0
            _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) | O_NONBLOCK)
            while written < limit {
                var poller = pollfd(fd: connection, events: Int16(POLLOUT), revents: 0)
                guard poll(&poller, 1, 2000) == 1 else { break }
                // A whole chunk or nothing of it, so that the stream stays well formed.
                var outgoing = 0
                var stalled = false
                while outgoing < chunk.count {
                    let count = chunk[outgoing...].withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                    if count > 0 {
                        outgoing += count
                    } else if outgoing == 0 {
                        stalled = true
                        break
                    } else {
                        var wait = pollfd(fd: connection, events: Int16(POLLOUT), revents: 0)
                        _ = poll(&wait, 1, -1)
                    }
                }
                if stalled { continue }
                written += chunk.count
                events += perChunk
            }
            _ = fcntl(connection, F_SETFL, fcntl(connection, F_GETFL) & ~O_NONBLOCK)
            continuation.yield((written, events))
            continuation.finish()
            Self.send(Array("0\r\n\r\n".utf8), to: connection)
        }
        return written
    }

    /// A request read from `connection`: its head (up to the blank line) and its Content-Length body.
    private static func readRequest(from connection: Int32) -> (head: String, body: [UInt8]) {
        var head: [UInt8] = []
        var byte: UInt8 = 0
        while !head.ends(with: Array("\r\n\r\n".utf8)), read(connection, &byte, 1) == 1 { head.append(byte) }
        let text = String(decoding: head, as: UTF8.self)
        let length =
            text.lowercased().split(separator: "\r\n").first { $0.hasPrefix("content-length:") }
            .flatMap { Int($0.dropFirst(15).trimmingCharacters(in: .whitespaces)) } ?? 0
        var body: [UInt8] = []
        while body.count < length, read(connection, &byte, 1) == 1 { body.append(byte) }
        return (text, body)
    }

    private static func send(_ bytes: [UInt8], to descriptor: Int32) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes[offset...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            if count <= 0 { return }
            offset += count
        }
    }
}

extension Array where Element == UInt8 {
    fileprivate func ends(with suffix: [UInt8]) -> Bool {
        count >= suffix.count && Array(self[(count - suffix.count)...]) == suffix
    }
}
