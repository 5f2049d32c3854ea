import FetchPolicy
import Logging
import ProcessSupervision
import SystemSupport

/// The bytes of one URI, verified and written.
struct Downloaded: Sendable {
    var sha256: String
    var bytes: Int64
    var extracted: Bool
}

extension PackageFetcher {
    /// Streams `uri` into a fresh `directory`: the source task hashes and queues bytes while a
    /// libarchive thread extracts them, so the download and the extraction overlap. The result is
    /// returned only when the payload is complete, extracted and matches its sha256.
    nonisolated func download(
        _ uri: FetchURI, into directory: String, scratch: String, budget: DiskBudget, as user: UserIdentity? = nil
    ) async throws(FetchError) -> Downloaded {
        var attempt = 0
        while true {
            attempt += 1
            removeTree(directory)
            if let failure = makeDirectories(directory) { throw .filesystem(uri.value, failure.description) }
            let channel = ByteChannel(capacity: configuration.bufferBytes)
            let writer = PayloadWriter(
                channel: channel, directory: directory, plan: uri.payloadPlan, fileName: uri.effectiveName,
                executable: uri.executable, limits: configuration.limits, budget: budget,
                spoolDirectory: scratch)
            let sink = DownloadSink(
                uri: uri, channel: channel, logger: logger, progressInterval: configuration.progressInterval)
            async let written = BlockingThread.run { writer.run() }
            let produced: Result<Void, StreamFailure>
            do throws(StreamFailure) {
                try await produce(uri, into: sink, scratch: scratch, as: user)
                produced = .success(())
            } catch {
                produced = .failure(error)
            }
            switch produced {
            case .success: channel.finish(nil)
            case .failure(let failure): channel.finish(failure)
            }
            let outcome = await written
            switch produced {
            case .failure(.restart(let cause)):
                guard attempt < configuration.attempts else { throw cause }
                logger.warning("\(cause); starting again from the first byte (attempt \(attempt + 1))")
                continue
            case .failure(.fetch(let error)):
                throw error
            case .failure(.extractionFailed), .success:
                if case .success = produced, let expected = uri.sha256 {
                    let actual = sink.digest()
                    guard actual == expected else {
                        throw .checksumMismatch(uri.value, expected: expected, actual: actual)
                    }
                    return try Self.checked(outcome, uri: uri, digest: actual, bytes: sink.bytes)
                }
                let digest = sink.digest()
                return try Self.checked(outcome, uri: uri, digest: digest, bytes: sink.bytes)
            }
        }
    }

    private static func checked(
        _ outcome: Result<PayloadWriter.Written, PayloadFailure>, uri: FetchURI, digest: String, bytes: Int64
    ) throws(FetchError) -> Downloaded {
        switch outcome {
        case .success(let written): return Downloaded(sha256: digest, bytes: bytes, extracted: written.extracted)
        case .failure(.source(let error)): throw (error as? FetchError) ?? .network(uri.value, "\(error)")
        case .failure(.unsafe(let entry, let reason)): throw .unsafeArchive(uri.value, entry: entry, reason)
        case .failure(.tooLarge(let what)): throw .archiveTooLarge(uri.value, what)
        case .failure(.diskLimit(let what)): throw .diskLimit(uri.value, what)
        case .failure(.archive(let detail)): throw .archive(uri.value, detail)
        case .failure(.io(let detail)): throw .filesystem(uri.value, detail)
        }
    }

    /// With `user`, a local file is opened with that user's permissions and hadoop runs as it.
    private nonisolated func produce(_ uri: FetchURI, into sink: DownloadSink, scratch: String, as user: UserIdentity?)
        async throws(StreamFailure)
    {
        switch uri.scheme {
        case .http, .https:
            try await HTTPSource(uri: uri, configuration: configuration, logger: logger).stream(
                into: sink)
        case .file:
            try await LocalSource(uri: uri, path: uri.localPath, user: user).stream(into: sink)
        case .hadoop:
            try await HadoopSource(uri: uri, configuration: configuration, scratch: scratch, user: user).stream(
                into: sink)
        }
    }
}
