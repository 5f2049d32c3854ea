import FetchPolicy
import HTTPGet
import Logging
import NIOCore
import NIOHTTP1

/// Streams an http(s) URI into a ``DownloadSink``: redirects, stall timeout, retries with backoff, and
/// resumption with `Range`/`If-Range` after a dropped or stalled connection when the server allows it.
struct HTTPSource {
    let uri: FetchURI
    let configuration: FetcherConfiguration
    let logger: Logger

    func stream(into sink: DownloadSink) async throws(StreamFailure) {
        var validator: String?
        var resumable = false
        var attempt = 0
        var backoff = configuration.retryBackoff
        while true {
            attempt += 1
            let offset = sink.bytes
            let failure: FetchError
            do {
                try await transfer(from: offset, validator: validator, into: sink) { headers in
                    validator = headers.first(name: "ETag") ?? headers.first(name: "Last-Modified")
                    resumable = headers[canonicalForm: "Accept-Ranges"].contains { $0.lowercased() == "bytes" }
                }
                return
            } catch .fetch(let error) {
                failure = error
            } catch let other {
                throw other
            }
            guard failure.isTransient, attempt < configuration.attempts else { throw .fetch(failure) }
            if sink.bytes > 0 && !resumable { throw .restart(failure) }
            let resuming = sink.bytes > 0 ? ", resuming at byte \(sink.bytes)" : ""
            logger.warning("\(failure); attempt \(attempt + 1) of \(configuration.attempts) in \(backoff)\(resuming)")
            do { try await Task.sleep(for: backoff) } catch { throw .fetch(.cancelled(uri.value)) }
            backoff *= 2
        }
    }

    private func transfer(
        from offset: Int64, validator: String?, into sink: DownloadSink, learn: (HTTPHeaders) -> Void
    ) async throws(StreamFailure) {
        guard let url = HTTPURL(uri.location) else {
            throw .fetch(.network(uri.value, "not an http(s) URL the fetcher can request"))
        }
        var headers: [(String, String)] = []
        if offset > 0 {
            headers.append(("Range", "bytes=\(offset)-"))
            if let validator { headers.append(("If-Range", validator)) }
        }
        let options = HTTPGetOptions(
            connectTimeout: configuration.connectTimeout, stallTimeout: configuration.stallTimeout,
            maxRedirects: configuration.maxRedirects)
        do {
            try await withHTTPGet(url, headers: headers, options: options) { response, body in
                try await receive(response, body, from: offset, into: sink, learn: learn)
            }
        } catch let failure as StreamFailure {
            throw failure
        } catch {
            throw .fetch(mapped(error, bytes: sink.bytes))
        }
        if let expected = sink.expectedBytes, sink.bytes < expected {
            throw .fetch(.network(uri.value, "connection closed after \(sink.bytes) of \(expected) bytes"))
        }
    }

    /// The answer's status decides; its body goes to `sink`.
    private func receive(
        _ response: HTTPGetResponse, _ body: HTTPGetBody, from offset: Int64, into sink: DownloadSink,
        learn: (HTTPHeaders) -> Void
    ) async throws(StreamFailure) {
        switch response.status.code {
        case 200:
            // A 200 to a Range request means the server sends everything again.
            if offset > 0 {
                throw .restart(.network(uri.value, "the server ignored the Range request after a dropped download"))
            }
            learn(response.headers)
            sink.expectedBytes = response.headers.first(name: "Content-Length").flatMap { Int64($0) }
        case 206:
            guard let range = response.headers.first(name: "Content-Range"), Self.rangeStart(range) == offset else {
                throw .restart(.network(uri.value, "the server answered a Range request with the wrong range"))
            }
        default:
            throw .fetch(
                .httpStatus(uri.value, status: Int(response.status.code), reason: response.status.reasonPhrase))
        }
        var chunks = body.makeAsyncIterator()
        while true {
            let chunk: ByteBuffer?
            do {
                chunk = try await chunks.next()
            } catch {
                throw .fetch(mapped(error, bytes: sink.bytes))
            }
            guard let chunk else { return }
            guard await sink.deliver(chunk) else { throw .extractionFailed }
        }
    }

    private func mapped(_ error: any Error, bytes: Int64) -> FetchError {
        if error is CancellationError || Task.isCancelled { return .cancelled(uri.value) }
        switch error as? HTTPGetError {
        case .stalled:
            return .stalled(uri.value, after: bytes, seconds: configuration.stallTimeout.seconds)
        case .connectTimeout:
            return .network(uri.value, "connect timed out after \(configuration.connectTimeout.seconds) s")
        case .closedEarly:
            return .network(uri.value, "the server closed the connection after \(bytes) bytes")
        case .invalidTarget:
            // A redirect to a URL no request can carry: asking again would not help.
            return .invalidURI(uri.value, "\(error)")
        default:
            return .network(uri.value, bytes > 0 ? "connection lost after \(bytes) bytes (\(error))" : "\(error)")
        }
    }

    /// The first byte of a `Content-Range: bytes <start>-<end>/<size>` header.
    static func rangeStart(_ header: String) -> Int64? {
        let value = header.trimmingWhitespace()
        guard value.lowercased().hasPrefix("bytes ") else { return nil }
        return value.dropFirst(6).split(separator: "-").first.flatMap { Int64(String($0).trimmingWhitespace()) }
    }
}

/// How a source's streaming ended, short of success.
enum StreamFailure: Error {
    /// The fetch failed with this error.
    case fetch(FetchError)
    /// Bytes were delivered and cannot be resumed: start the fetch again from zero.
    case restart(FetchError)
    /// The extraction failed; its error is the one to report.
    case extractionFailed
}
