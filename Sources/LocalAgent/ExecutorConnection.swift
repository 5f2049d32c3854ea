import Foundation
import MesosCodec
import NIOCore
import NIOHTTP1

/// The I/O of one listener and its connections; every decision is the agent's.
enum ExecutorConnection {
    /// Accepts connections until the listener closes (agent down) or the task is cancelled, then
    /// drops every connection it accepted.
    static func serve(_ listener: Listener, agent: LocalAgent) async {
        do {
            try await listener.executeThenClose { inbound in
                try await withThrowingDiscardingTaskGroup { group in
                    for try await connection in inbound {
                        group.addTask { await serve(connection, agent: agent) }
                    }
                    group.cancelAll()
                }
            }
        } catch {
            // Closed because the agent went down or stopped; nothing to report.
        }
    }

    private static func serve(_ connection: ConnectionChannel, agent: LocalAgent) async {
        agent.accepted.release(connection)
        guard let id = await agent.register(connection.channel) else {
            // The agent went down while this connection was being accepted. Closed through
            // executeThenClose, which finishes the outbound writer: one dropped unfinished traps.
            try? await connection.executeThenClose { _, _ in }
            return
        }
        do {
            try await connection.executeThenClose { inbound, outbound in
                try await withThrowingDiscardingTaskGroup { group in
                    var stream: Int?
                    do {
                        stream = try await answerRequests(inbound, outbound, connection: id, agent: agent) {
                            number in group.addTask { await heartbeats(number, agent: agent) }
                        }
                    } catch {
                        // Reset by the peer, or closed by the agent: either way the connection is over.
                    }
                    group.cancelAll()
                    if let stream { await agent.streamClosedByPeer(stream) }
                }
            }
        } catch {
            // Already closed.
        }
        await agent.unregister(id)
    }

    /// Answers requests in order until the connection ends; once a SUBSCRIBE stream starts, later
    /// requests are reported and never answered. After an answer to a request without keep-alive,
    /// nothing more is answered and the connection stays open until the peer closes it, having read
    /// the whole answer (closing here would drop what is still queued for the socket, the tail of a
    /// large download). Returns the stream number, if one was opened.
    private static func answerRequests(
        _ inbound: NIOAsyncChannelInboundStream<StampedRequestPart>,
        _ outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>,
        connection: Int,
        agent: LocalAgent,
        startStream: (Int) -> Void
    ) async throws -> Int? {
        var head: HTTPRequestHead?
        var received = Date()
        var body = ByteBuffer()
        var stream: Int?
        var answeredLast = false
        for try await stamped in inbound {
            let part = stamped.part
            if answeredLast { continue }
            if let stream {
                if case .head(let extra) = part {
                    await agent.requestOnSubscribeConnection(stream, method: extra.method.rawValue, uri: extra.uri)
                }
                continue
            }
            switch part {
            case .head(let requestHead):
                head = requestHead
                received = stamped.arrived
                body.clear()
            case .body(var chunk):
                body.writeBuffer(&chunk)
            case .end:
                guard let requestHead = head else { continue }
                head = nil
                if requestHead.method == .GET, requestHead.uri.hasPrefix("/files/download?"),
                    let file = await agent.openPublishedFile(requestHead.uri)
                {
                    try await FileResponder.write(file.path, for: requestHead, to: outbound)
                    answeredLast = !requestHead.isKeepAlive
                    continue
                }
                let request = ExecutorRequest(
                    method: requestHead.method,
                    uri: requestHead.uri,
                    headers: requestHead.headers,
                    body: Array(body.readableBytesView),
                    received: received
                )
                // An answer written through `outbound` has reached the channel once the write
                // returns, so a stream's head, which the agent writes to the channel itself, follows it.
                switch await agent.handle(request, version: requestHead.version, connection: connection) {
                case .close:
                    return nil
                case .response(let response):
                    try await outbound.write(contentsOf: parts(of: response, for: requestHead))
                    answeredLast = !requestHead.isKeepAlive
                case .stream(let number):
                    stream = number
                    startStream(number)
                }
            }
        }
        return stream
    }

    private static func parts(of response: AgentResponse, for request: HTTPRequestHead) -> [HTTPServerResponsePart] {
        var headers = response.headers
        headers.replaceOrAdd(name: "Content-Length", value: String(response.body.utf8.count))
        if !request.isKeepAlive { headers.replaceOrAdd(name: "Connection", value: "close") }
        var parts: [HTTPServerResponsePart] = [
            .head(HTTPResponseHead(version: request.version, status: response.status, headers: headers))
        ]
        if !response.body.isEmpty { parts.append(.body(.byteBuffer(ByteBuffer(string: response.body)))) }
        parts.append(.end(nil))
        return parts
    }

    private static func heartbeats(_ stream: Int, agent: LocalAgent) async {
        let interval = agent.configuration.heartbeatInterval
        while true {
            do { try await Task.sleep(for: interval) } catch { return }
            guard await agent.heartbeat(stream) else { return }
        }
    }
}
