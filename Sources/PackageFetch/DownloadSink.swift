import FetchPolicy
import Logging
import NIOCore

/// The producer's end of a fetch: hashes every byte, counts it, hands it to the extraction and logs
/// progress. Used by one task at a time; a resumed download keeps feeding the same sink.
final class DownloadSink {
    let uri: FetchURI
    private let channel: ByteChannel
    private let hasher = SHA256()
    private let logger: Logger
    private let progressInterval: Duration
    private let clock = ContinuousClock()
    private let started: ContinuousClock.Instant
    private var lastReport: ContinuousClock.Instant
    private(set) var bytes: Int64 = 0
    /// The size the server announced, for progress lines.
    var expectedBytes: Int64?

    init(uri: FetchURI, channel: ByteChannel, logger: Logger, progressInterval: Duration) {
        self.uri = uri
        self.channel = channel
        self.logger = logger
        self.progressInterval = progressInterval
        started = clock.now
        lastReport = started
    }

    /// Delivers one chunk. Returns false when the extraction has failed and producing should stop.
    func deliver(_ chunk: ByteBuffer) async -> Bool {
        chunk.withUnsafeReadableBytes { hasher.update($0) }
        bytes += Int64(chunk.readableBytes)
        let now = clock.now
        if now - lastReport >= progressInterval {
            lastReport = now
            let rate = Double(bytes) / (now - started).seconds / 1_048_576
            var line = "fetching \(uri): \(bytes >> 20) MiB"
            if let expectedBytes, expectedBytes > 0 { line += " of \(expectedBytes >> 20) MiB" }
            logger.info("\(line) at \(Int(rate)) MiB/s")
        }
        return await channel.send(chunk) != .consumerFailed
    }

    /// The payload's sha256 in hex; call once, after the last chunk.
    func digest() -> String { hasher.finish() }
}
