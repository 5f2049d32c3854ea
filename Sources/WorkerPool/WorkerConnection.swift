import MesosCodec
import NIOCore
import NIOPosix
import ProcessSupervision
import Synchronization
import SystemSupport
import WorkerWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The executor's half of the worker protocol for one worker process: writes what is put in its
/// ``WorkerMailbox``, reads hello, results and progress, and stops a worker that breaks the
/// protocol.
///
/// The worker's pipes are one NIO channel with one handler of ours (``WorkerFrameReader``), which
/// decodes and checks the worker's messages on the event loop; messages put in the mailbox are
/// written to the channel by whoever puts them there, and the hello timeout is a task scheduled on
/// the event loop: the only task a worker's connection has is the one that hands its messages on.
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

    /// Serves the worker until its output pipe ends. Calls `onHello` once a valid hello arrived,
    /// `onResults` with every batch of results read together and `onProgress` with each progress
    /// report, one at a time and in the worker's order. ``WorkerMailbox/finish()`` closes the
    /// worker's input.
    func serve(
        mailbox: WorkerMailbox,
        onHello: @escaping @Sendable (WorkerHello) async -> Void,
        onResults: @escaping @Sendable ([RunResult]) async -> Void,
        onProgress: @escaping @Sendable (RunProgress) async -> Void = { _ in }
    ) async -> End {
        let (messages, delivery) = AsyncStream.makeStream(of: WorkerFrameReader.Message.self)
        let pacing = WorkerFrameReader.Pacing()
        let flags = Flags()
        let limit = maximumMessageSize
        let channel: any Channel
        do {
            channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .channelOption(ChannelOptions.autoRead, value: false)
                .takingOwnershipOfDescriptors(input: worker.fromWorker, output: worker.toWorker) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        let reader = WorkerFrameReader(
                            maximumMessageSize: limit, flags: flags, pacing: pacing, delivery: delivery)
                        try channel.pipeline.syncOperations.addHandler(reader, name: "worker-frames")
                        return channel
                    }
                }
        } catch {
            delivery.finish()
            close(worker.fromWorker)
            close(worker.toWorker)
            worker.child.signalGroup(SIGKILL)
            return .protocolError("its pipes could not be watched: \(error)")
        }
        let child = worker.child
        let hello = channel.eventLoop.scheduleTask(in: TimeAmount(helloTimeout)) {
            if !flags.helloSeen.load(ordering: .sequentiallyConsistent) {
                flags.timedOut.store(true, ordering: .sequentiallyConsistent)
                child.signalGroup(SIGKILL)
            }
        }
        mailbox.attach(channel)
        var problem: String?
        for await message in messages {
            switch message {
            case .hello(let greeting):
                hello.cancel()
                await onHello(greeting)
            case .results(let results): await onResults(results)
            case .progress(let progress): await onProgress(progress)
            case .protocolError(let why): problem = why
            }
            pacing.consumed(by: channel)
        }
        // The stream ends once the channel is closed: nothing the mailbox writes arrives any more.
        hello.cancel()
        mailbox.detach()
        if let problem {
            child.signalGroup(SIGKILL)
            return .protocolError(problem)
        }
        if flags.timedOut.load(ordering: .sequentiallyConsistent) {
            return .protocolError("did not say hello within \(helloTimeout)")
        }
        if !flags.helloSeen.load(ordering: .sequentiallyConsistent) {
            child.signalGroup(SIGKILL)
            return .closedBeforeHello
        }
        if mailbox.isFinished { return .closedByUs }
        // Still alive with its pipe closed, it could never be reached again.
        child.signalGroup(SIGKILL)
        return .closedByWorker
    }

    /// Shared between the reader on the event loop and the hello timeout.
    final class Flags: Sendable {
        let helloSeen = Atomic(false)
        let timedOut = Atomic(false)
    }
}

/// What the pool sends one worker: written to its pipe by whoever puts it here (the pool), once
/// the worker's connection is up; kept until then, in order.
final class WorkerMailbox: Sendable {
    private enum State {
        /// The connection is not up yet: what to write, and whether the input is to be closed.
        case waiting([ByteBuffer], finished: Bool)
        case open(any Channel, finished: Bool)
        /// The connection has ended; nothing is written any more.
        case ended(finished: Bool)
    }

    private let state = LockedValue(State.waiting([], finished: false))

    /// Writes `messages` to the worker (in one write), or keeps them until its connection is up.
    /// Once ``finish()`` was called, or the connection has ended, they are dropped.
    func send(_ messages: [ToWorker]) {
        var buffer = ByteBuffer()
        for message in messages { RecordIO.encode(message.encoded(), into: &buffer) }
        // Written under the lock, so that writes reach the event loop in the order they were sent.
        state.withLock { state in
            switch state {
            case .waiting(var pending, false):
                state = .ended(finished: false)  // so that the append does not copy what waits
                pending.append(buffer)
                state = .waiting(pending, finished: false)
            case .open(let channel, false):
                channel.writeAndFlush(buffer, promise: nil)
            case .waiting(_, true), .open(_, true), .ended: break
            }
        }
    }

    /// Closes the worker's input once what was sent before is written: the worker's sign to end.
    func finish() {
        state.withLock { state in
            switch state {
            case .waiting(let pending, _): state = .waiting(pending, finished: true)
            case .open(let channel, false):
                channel.close(mode: .output, promise: nil)
                state = .open(channel, finished: true)
            case .open(_, true), .ended: break
            }
        }
    }

    /// Whether ``finish()`` was called.
    var isFinished: Bool {
        state.withLock { state in
            switch state {
            case .waiting(_, let finished), .open(_, let finished), .ended(let finished): finished
            }
        }
    }

    /// The worker's connection is up: what waited is written now, then everything sent.
    fileprivate func attach(_ channel: any Channel) {
        state.withLock { state in
            guard case .waiting(let pending, let finished) = state else { return }
            for buffer in pending { channel.write(buffer, promise: nil) }
            if !pending.isEmpty { channel.flush() }
            if finished { channel.close(mode: .output, promise: nil) }
            state = .open(channel, finished: finished)
        }
    }

    /// The worker's connection has ended.
    fileprivate func detach() {
        state.withLock { state in
            switch state {
            case .waiting(_, let finished), .open(_, let finished), .ended(let finished):
                state = .ended(finished: finished)
            }
        }
    }
}

/// Reads a worker's output pipe on the event loop: RecordIO frames, each a worker message, checked
/// against the protocol (hello first and once, in our version) and handed to the connection's
/// task. A worker that breaks the protocol is told as a `protocolError` and its channel closed.
///
/// Reading is paced by the task that handles the messages: once `Pacing.highWater` messages
/// wait for it, the pipe is not read until it has caught up (to `Pacing.lowWater`), so a worker
/// that writes faster than the executor handles it is held back by its pipe, not queued in the
/// executor's memory.
final class WorkerFrameReader: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    enum Message: Sendable {
        case hello(WorkerHello)
        case results([RunResult])
        case progress(RunProgress)
        case protocolError(String)
    }

    /// The count of messages handed over and not yet handled, shared by the event loop and the
    /// task that handles them.
    final class Pacing: Sendable {
        static let highWater = 8
        static let lowWater = 2
        private let waiting = Atomic(0)
        /// Set when the reader stopped reading; whoever clears it reads again.
        private let paused = Atomic(false)

        fileprivate func handedOver() { waiting.add(1, ordering: .sequentiallyConsistent) }

        /// Whether the reader has stopped reading until messages are handled (for tests).
        var isPaused: Bool { paused.load(ordering: .sequentiallyConsistent) }
        /// How many messages wait to be handled (for tests).
        var waitingCount: Int { waiting.load(ordering: .sequentiallyConsistent) }

        /// Whether the reader may read on (on the event loop, after a read).
        fileprivate func mayRead() -> Bool {
            if waiting.load(ordering: .sequentiallyConsistent) < Self.highWater { return true }
            paused.store(true, ordering: .sequentiallyConsistent)
            // The serving task may have caught up meanwhile and seen no pause.
            return waiting.load(ordering: .sequentiallyConsistent) < Self.highWater
                && paused.exchange(false, ordering: .sequentiallyConsistent)
        }

        /// One message was handled: read again if the reader paused and the backlog is low.
        func consumed(by channel: any Channel) {
            let left = waiting.subtract(1, ordering: .sequentiallyConsistent).newValue
            if left <= Self.lowWater && paused.exchange(false, ordering: .sequentiallyConsistent) {
                channel.read()
            }
        }
    }

    private var decoder: RecordIODecoder
    private var pending = ByteBuffer()
    private var broken = false
    private let flags: WorkerConnection.Flags
    private let pacing: Pacing
    private let delivery: AsyncStream<Message>.Continuation

    init(
        maximumMessageSize: Int, flags: WorkerConnection.Flags, pacing: Pacing,
        delivery: AsyncStream<Message>.Continuation
    ) {
        decoder = RecordIODecoder(maximumRecordSize: maximumMessageSize)
        self.flags = flags
        self.pacing = pacing
        self.delivery = delivery
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
        context.fireChannelActive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !broken else { return }
        pending.writeImmutableBuffer(unwrapInboundIn(data))
        var results: [RunResult] = []
        do {
            while let frame = try decoder.decode(buffer: &pending) {
                let message: FromWorker
                do {
                    message = try FromWorker(decoding: ArraySlice(frame.readableBytesView))
                } catch {
                    return fail("sent a message that is not a worker message: \(error)", results, context)
                }
                switch message {
                case .hello(let hello):
                    guard !flags.helloSeen.load(ordering: .sequentiallyConsistent) else {
                        return fail("said hello twice", results, context)
                    }
                    guard hello.protocolVersion == workerProtocolVersion else {
                        return fail(
                            "speaks worker protocol version \(hello.protocolVersion); this executor speaks version \(workerProtocolVersion)",
                            results, context)
                    }
                    flags.helloSeen.store(true, ordering: .sequentiallyConsistent)
                    hand(.hello(hello))
                case .result(let result):
                    guard flags.helloSeen.load(ordering: .sequentiallyConsistent) else {
                        return fail("sent a result before its hello", results, context)
                    }
                    results.append(result)
                case .progress(let progress):
                    guard flags.helloSeen.load(ordering: .sequentiallyConsistent) else {
                        return fail("sent progress before its hello", results, context)
                    }
                    // Progress follows the results read before it.
                    if !results.isEmpty {
                        hand(.results(results))
                        results = []
                    }
                    hand(.progress(progress))
                }
            }
        } catch {
            return fail("sent bytes that are not RecordIO frames: \(error)", results, context)
        }
        pending.discardReadBytes()
        if !results.isEmpty { hand(.results(results)) }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if !broken && pacing.mayRead() { context.read() }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        delivery.finish()
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        // A pipe that fails to read or write is a worker gone: its end is told by the close.
        context.close(promise: nil)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        delivery.finish()
    }

    private func hand(_ message: Message) {
        pacing.handedOver()
        delivery.yield(message)
    }

    /// The worker broke the protocol: what it reported correctly before goes first, then why.
    private func fail(_ why: String, _ results: [RunResult], _ context: ChannelHandlerContext) {
        broken = true
        if !results.isEmpty { hand(.results(results)) }
        hand(.protocolError(why))
        context.close(promise: nil)
    }
}
