import MesosCodec
import NIOCore
import NIOPosix
import ProcessSupervision
import Synchronization
import WorkerWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The executor's half of the worker protocol for one worker process: writes what arrives in
/// its mailbox, reads hello and results, and stops a worker that breaks the protocol.
struct WorkerConnection: Sendable {
    let worker: LaunchedWorker
    let helloTimeout: Duration
    let maximumMessageSize: Int

    /// Why the conversation ended, before the process itself is reaped.
    enum End: Sendable {
        /// We closed its input and it closed its output: a clean end.
        case closedByUs
        /// It closed its output on its own (crashed, exited, or dropped the pipe).
        case closedByWorker
        /// It closed its output (exited, most likely) without ever saying hello.
        case closedBeforeHello
        /// It broke the protocol and was killed.
        case protocolError(String)
    }

    /// Serves the worker until its output pipe ends. Calls `onHello` once a valid hello arrived
    /// and `onResults` with every batch of results read together. `mailbox` finishing closes the
    /// worker's input.
    func serve(
        mailbox: AsyncStream<[ToWorker]>,
        onHello: @escaping @Sendable (WorkerHello) async -> Void,
        onResults: @escaping @Sendable ([RunResult]) async -> Void,
        onProgress: @escaping @Sendable (RunProgress) async -> Void = { _ in }
    ) async -> End {
        let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
        do {
            channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .takingOwnershipOfDescriptors(input: worker.fromWorker, output: worker.toWorker) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(
                            wrappingChannelSynchronously: channel,
                            configuration: .init(isOutboundHalfClosureEnabled: true))
                    }
                }
        } catch {
            close(worker.fromWorker)
            close(worker.toWorker)
            worker.child.signalGroup(SIGKILL)
            return .protocolError("its pipes could not be watched: \(error)")
        }
        let flags = Flags()
        let child = worker.child
        let timeout = helloTimeout
        let limit = maximumMessageSize
        let end: End? = try? await channel.executeThenClose { inbound, outbound in
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    for await messages in mailbox {
                        var buffer = ByteBuffer()
                        for message in messages { RecordIO.encode(message.encoded(), into: &buffer) }
                        do { try await outbound.write(buffer) } catch { break }
                    }
                    flags.inputClosed.store(true, ordering: .sequentiallyConsistent)
                    outbound.finish()
                }
                group.addTask {
                    do { try await Task.sleep(for: timeout) } catch { return }
                    if !flags.helloSeen.load(ordering: .sequentiallyConsistent) {
                        flags.timedOut.store(true, ordering: .sequentiallyConsistent)
                        child.signalGroup(SIGKILL)
                    }
                }
                var end = await Self.read(
                    inbound, limit: limit, flags: flags, onHello: onHello, onResults: onResults,
                    onProgress: onProgress)
                if case .protocolError = end {
                    child.signalGroup(SIGKILL)
                } else if flags.timedOut.load(ordering: .sequentiallyConsistent) {
                    end = .protocolError("did not say hello within \(timeout)")
                } else if !flags.helloSeen.load(ordering: .sequentiallyConsistent) {
                    child.signalGroup(SIGKILL)
                    end = .closedBeforeHello
                } else if flags.inputClosed.load(ordering: .sequentiallyConsistent) {
                    end = .closedByUs
                } else {
                    // Still alive with its pipe closed, it could never be reached again.
                    child.signalGroup(SIGKILL)
                }
                group.cancelAll()
                return end
            }
        }
        return end ?? .closedByWorker
    }

    /// Shared between the reader, the writer and the hello timer of one connection.
    final class Flags: Sendable {
        let helloSeen = Atomic(false)
        let inputClosed = Atomic(false)
        let timedOut = Atomic(false)
    }

    private static func read(
        _ inbound: NIOAsyncChannelInboundStream<ByteBuffer>, limit: Int, flags: Flags,
        onHello: @Sendable (WorkerHello) async -> Void, onResults: @Sendable ([RunResult]) async -> Void,
        onProgress: @Sendable (RunProgress) async -> Void
    ) async -> End {
        var decoder = RecordIODecoder(maximumRecordSize: limit)
        var pending = ByteBuffer()
        do {
            for try await chunk in inbound {
                pending.writeImmutableBuffer(chunk)
                var results: [RunResult] = []
                while let frame = try decoder.decode(buffer: &pending) {
                    let message: FromWorker
                    do {
                        message = try FromWorker(decoding: ArraySlice(frame.readableBytesView))
                    } catch {
                        return .protocolError("sent a message that is not a worker message: \(error)")
                    }
                    switch message {
                    case .hello(let hello):
                        guard !flags.helloSeen.load(ordering: .sequentiallyConsistent) else {
                            return .protocolError("said hello twice")
                        }
                        guard hello.protocolVersion == workerProtocolVersion else {
                            return .protocolError(
                                "speaks worker protocol version \(hello.protocolVersion); this executor speaks version \(workerProtocolVersion)"
                            )
                        }
                        flags.helloSeen.store(true, ordering: .sequentiallyConsistent)
                        await onHello(hello)
                    case .result(let result):
                        guard flags.helloSeen.load(ordering: .sequentiallyConsistent) else {
                            return .protocolError("sent a result before its hello")
                        }
                        results.append(result)
                    case .progress(let progress):
                        guard flags.helloSeen.load(ordering: .sequentiallyConsistent) else {
                            return .protocolError("sent progress before its hello")
                        }
                        await onProgress(progress)
                    }
                }
                pending.discardReadBytes()
                if !results.isEmpty { await onResults(results) }
            }
        } catch let error as CodecError {
            return .protocolError("sent bytes that are not RecordIO frames: \(error)")
        } catch {
            return .closedByWorker
        }
        return .closedByWorker
    }
}
