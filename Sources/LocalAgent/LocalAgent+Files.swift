import Foundation
import MesosProto
import NIOCore
import NIOHTTP1

#if canImport(Glibc)
    import Glibc
#endif

/// Files the agent serves at `GET /files/download?path=NAME`, as a Mesos agent serves sandbox
/// files: how a local package reaches the executor over real HTTP (harness mode, tests).
extension LocalAgent {
    /// Serves the file at `path` as `name`; returns its URL on this agent.
    @discardableResult
    public func publish(file path: String, as name: String) -> String {
        publishedFiles[name] = path
        return fileURL(name)
    }

    /// The URL a published file has (or would have) on this agent.
    public func fileURL(_ name: String) -> String {
        let scheme = configuration.tlsCertificateChainFile == nil ? "http" : "https"
        return "\(scheme)://\(configuration.host):\(port)/files/download?path=\(Self.percentEncode(name))"
    }

    /// How many times each published file was downloaded (complete or not).
    public var downloads: [String: Int] { fileDownloads }

    func openPublishedFile(_ uri: String) -> (name: String, path: String)? {
        guard let query = uri.split(separator: "?", maxSplits: 1).last, uri.hasPrefix("/files/download?") else {
            return nil
        }
        for pair in query.split(separator: "&") where pair.hasPrefix("path=") {
            let name = Self.percentDecode(String(pair.dropFirst(5)))
            if let path = publishedFiles[name] {
                fileDownloads[name, default: 0] += 1
                return (name, path)
            }
        }
        return nil
    }

    static func percentEncode(_ text: String) -> String {
        var out = ""
        for byte in text.utf8 {
            let scalar = UnicodeScalar(byte)
            if scalar.properties.isAlphabetic && byte < 0x80 || (0x30...0x39).contains(byte)
                || "-._~".utf8.contains(byte)
            {
                out.unicodeScalars.append(scalar)
            } else {
                out += format(byte)
            }
        }
        return out
    }

    private static func format(_ byte: UInt8) -> String {
        "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
    }

    static func percentDecode(_ text: String) -> String {
        var bytes: [UInt8] = []
        var iterator = Array(text.utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte == UInt8(ascii: "+") ? UInt8(ascii: " ") : byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}

enum FileResponder {
    /// Streams the file at `path` (200, Content-Length) or answers 404 when it cannot be read.
    static func write(
        _ path: String?, for request: HTTPRequestHead,
        to outbound: NIOAsyncChannelOutboundWriter<HTTPServerResponsePart>
    ) async throws {
        var status = HTTPResponseStatus.notFound
        var fd: Int32 = -1
        var size: Int = 0
        if let path {
            fd = open(path, O_RDONLY | O_CLOEXEC)
            var info = stat()
            if fd >= 0, fstat(fd, &info) == 0 {
                status = .ok
                size = Int(info.st_size)
            }
        }
        defer { if fd >= 0 { close(fd) } }
        var headers = HTTPHeaders()
        headers.add(name: "Content-Length", value: String(status == .ok ? size : 0))
        headers.add(name: "Content-Type", value: "application/octet-stream")
        try await outbound.write(.head(HTTPResponseHead(version: request.version, status: status, headers: headers)))
        if status == .ok {
            var buffer = ByteBufferAllocator().buffer(capacity: 1 << 20)
            while true {
                buffer.clear()
                let count = buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: 1 << 20) { raw in
                    max(0, read(fd, raw.baseAddress, raw.count))
                }
                if count == 0 { break }
                try await outbound.write(.body(.byteBuffer(buffer)))
            }
        }
        try await outbound.write(.end(nil))
    }
}
