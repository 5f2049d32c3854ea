import LocalAgent
import SystemSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// `GET /files/download` of a published file, as the fetcher makes it.
struct FileDownloadTests {
    /// A request with `Connection: close`, read by a client slower than the agent writes (a 4 KiB
    /// receive buffer): the answer arrives whole. The agent leaves the connection to the client
    /// rather than closing it while the tail of the file is still queued for the socket.
    @Test func aWholeFileReachesASlowClientThatAskedForClose() async throws {
        let size = 8 << 20
        let path = "/tmp/local-agent-download-\(getpid())"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        try #require(fd >= 0)
        defer { unlink(path) }
        var content = [UInt8](repeating: 0, count: size)
        for index in content.indices { content[index] = UInt8(truncatingIfNeeded: index &* 7 &+ index >> 13) }
        try #require(content.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) } == size)
        close(fd)
        try await withLocalAgent(testConfiguration { _ in }) { agent in
            let url = await agent.publish(file: path, as: "big.bin")
            let target = "/files/download" + url.split(separator: "/files/download", maxSplits: 1)[1]
            let received = try await Self.download(target, port: agent.port)
            #expect(received.status == "HTTP/1.1 200 OK")
            #expect(received.body.count == size)
            // Compared byte by byte: a failed `==` of two 8 MiB arrays makes the test library
            // compute their difference, which takes a core for tens of minutes.
            let common = min(received.body.count, size)
            let firstDifference = (0..<common).first { received.body[$0] != content[$0] }
            #expect(firstDifference == nil, "the body differs from byte \(firstDifference ?? 0) on")
        }
    }

    /// A blocking client on a socket and a thread of its own: the request, then the head and
    /// `Content-Length` bytes, 4 KiB at a time. Not on the concurrency pool: blocked there, it took
    /// one of the pool's two threads (one per core) from the agent it waits for, and the rest of
    /// the suite from both when another test blocked the other.
    private static func download(_ target: String, port: Int) async throws -> (status: String, body: [UInt8]) {
        try await BlockingThread.run { Result { try blockingDownload(target, port: port) } }.get()
    }

    struct DownloadFailure: Error, CustomStringConvertible {
        let description: String
    }

    private static func blockingDownload(_ target: String, port: Int) throws -> (status: String, body: [UInt8]) {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { throw DownloadFailure(description: "socket: errno \(errno)") }
        defer { close(socket) }
        var small: Int32 = 4096
        setsockopt(socket, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        // An agent that stops sending fails the test instead of hanging it.
        var patience = timeval(tv_sec: 120, tv_usec: 0)
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &patience, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw DownloadFailure(description: "connect: errno \(errno)") }
        let request = Array("GET \(target) HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8)
        guard request.withUnsafeBytes({ send(socket, $0.baseAddress, $0.count, 0) }) == request.count else {
            throw DownloadFailure(description: "send: errno \(errno)")
        }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var expected: Int?
        var headEnd: Int?
        while expected.map({ bytes.count < headEnd! + $0 }) ?? true {
            let count = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { break }
            bytes += chunk[..<count]
            if headEnd == nil, let end = bytes.firstRange(of: Array("\r\n\r\n".utf8)) {
                headEnd = end.upperBound
                let head = String(decoding: bytes[..<end.lowerBound], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                expected = length.flatMap {
                    Int(String($0.split(separator: ":", maxSplits: 1)[1].drop { $0 == " " }))
                }
                guard expected != nil else { throw DownloadFailure(description: "no Content-Length in \(head)") }
            }
        }
        let head = String(decoding: bytes[..<(headEnd ?? 0)], as: UTF8.self)
        return (head.split(separator: "\r\n").first.map(String.init) ?? "", Array(bytes[(headEnd ?? 0)...]))
    }
}
