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
/// written by whoever puts them there, straight to the pipe while it takes them and through the
/// channel when it is full, and the hello timeout is a task scheduled on the event loop: the only
/// task a worker's connection has is the one that hands its messages on.
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
        // The mailbox's own copy of the input pipe, made while the descriptor is surely ours.
        let input = dup(worker.toWorker)
        let channel: any Channel
        do {
            guard input >= 0 else { throw IOError(errnoCode: errno, reason: "dup") }
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
            if input >= 0 { close(input) }
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
        mailbox.attach(channel, input: input)
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
///
/// Messages are written one of two ways, chosen by the sender:
/// - **By the sending thread** (`writtenHere`, for mini-tasks, and what waited for the connection):
///   `write(2)` through the mailbox's own copy of the pipe's descriptor. Handing a batch to the
///   event loop instead wakes the loop's thread for every batch (about one in 16 mini-tasks): by
///   measurement, a tenth of the executor's CPU per mini-task.
/// - **By the event loop** (a Mesos task's run): the pipe wakes the worker on the core of the
///   thread that wrote, and the loop's thread sleeps right after, where the thread that sent goes
///   on with the task's status update. Written by the sending thread, an idle worker waited for
///   it: coarse LAUNCH→TASK_RUNNING p50 went up by about a tenth.
///
/// Whatever the pipe does not take at once (it is full: a large payload, a worker that does not
/// read) goes to the channel, and everything sent after it follows it there until the channel has
/// written all it was given, so that the worker reads the messages in the order they were sent.
/// The copy of the descriptor is the mailbox's alone: the channel may close its own at any time
/// without the mailbox writing to a number reused meanwhile.
final class WorkerMailbox: Sendable {
    private enum State {
        /// The connection is not up yet: what to write, and whether the input is to be closed.
        case waiting([ByteBuffer], finished: Bool)
        /// `input` is the mailbox's copy of the pipe, -1 once closed.
        case open(any Channel, input: Int32, finished: Bool)
        /// The connection has ended; nothing is written any more.
        case ended(finished: Bool)
    }

    private let state = LockedValue(State.waiting([], finished: false))
    /// Writes handed to the channel and not yet written by it: while there are any, what is sent
    /// goes to the channel too. Counted up under the state's lock, down on the event loop.
    private let inChannel = Atomic(0)

    /// Writes `messages` to the worker (in one write), or keeps them until its connection is up.
    /// Once ``finish()`` was called, or the connection has ended, they are dropped. `writtenHere`:
    /// written by the calling thread rather than handed to the event loop (see the type's comment).
    func send(_ messages: [ToWorker], writtenHere: Bool = false) {
        // The frames are written in place into one array sized for them all, then copied once.
        var frames: [UInt8] = []
        var size = 0
        for message in messages { size += message.frameSize }
        frames.reserveCapacity(size)
        for message in messages { message.appendFrame(to: &frames) }
        var buffer = ByteBuffer(bytes: frames)
        // Written under the lock, so that writes reach the pipe in the order they were sent.
        state.withLock { state in
            switch state {
            case .waiting(var pending, false):
                state = .ended(finished: false)  // so that the append does not copy what waits
                pending.append(buffer)
                state = .waiting(pending, finished: false)
            case .open(let channel, let input, false):
                let left = deliver(&buffer, to: channel, input: writtenHere ? input : -1)
                state = .open(channel, input: writtenHere ? left : input, finished: false)
            case .waiting(_, true), .open(_, _, true), .ended: break
            }
        }
    }

    /// Closes the worker's input once what was sent before is written: the worker's sign to end.
    func finish() {
        state.withLock { state in
            switch state {
            case .waiting(let pending, _): state = .waiting(pending, finished: true)
            case .open(let channel, let input, false):
                // The channel closes its descriptor once it has written what it was given; the
                // worker reads the end of its input when both are closed.
                if input >= 0 { close(input) }
                channel.close(mode: .output, promise: nil)
                state = .open(channel, input: -1, finished: true)
            case .open(_, _, true), .ended: break
            }
        }
    }

    /// Whether ``finish()`` was called.
    var isFinished: Bool {
        state.withLock { state in
            switch state {
            case .waiting(_, let finished), .open(_, _, let finished), .ended(let finished): finished
            }
        }
    }

    /// The worker's connection is up, with `input` the mailbox's copy of the pipe (non-blocking,
    /// as the channel made it): what waited is written now, then everything sent.
    func attach(_ channel: any Channel, input: Int32) {
        state.withLock { state in
            guard case .waiting(let pending, let finished) = state else {
                close(input)
                return
            }
            var input = input
            for var buffer in pending { input = deliver(&buffer, to: channel, input: input) }
            if finished {
                if input >= 0 { close(input) }
                input = -1
                channel.close(mode: .output, promise: nil)
            }
            state = .open(channel, input: input, finished: finished)
        }
    }

    /// The worker's connection has ended.
    func detach() {
        state.withLock { state in
            switch state {
            case .open(_, let input, let finished):
                if input >= 0 { close(input) }
                state = .ended(finished: finished)
            case .waiting(_, let finished), .ended(let finished):
                state = .ended(finished: finished)
            }
        }
    }

    /// Writes `buffer` to the pipe itself if the channel has nothing left to write, and what the
    /// pipe does not take to the channel; under the state's lock. Returns the copy of the pipe to
    /// use from now on: -1 once a write to it failed (the worker closed its input or is gone), in
    /// which case the channel is closed, as it closes itself when one of its writes fails.
    private func deliver(_ buffer: inout ByteBuffer, to channel: any Channel, input: Int32) -> Int32 {
        if input >= 0 && inChannel.load(ordering: .acquiring) == 0 {
            while buffer.readableBytes > 0 {
                let written = buffer.withUnsafeReadableBytes { write(input, $0.baseAddress, $0.count) }
                if written > 0 {
                    buffer.moveReaderIndex(forwardBy: written)
                } else if written < 0 && errno == EINTR {
                    continue
                } else if written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) {
                    break
                } else {
                    close(input)
                    channel.close(promise: nil)
                    return -1
                }
            }
            if buffer.readableBytes == 0 { return input }
        }
        inChannel.add(1, ordering: .relaxed)
        let written = channel.eventLoop.makePromise(of: Void.self)
        // A write that failed closes the channel: nothing is written directly after it any more.
        written.futureResult.whenSuccess { self.inChannel.subtract(1, ordering: .releasing) }
        channel.writeAndFlush(buffer, promise: written)
        return input
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
