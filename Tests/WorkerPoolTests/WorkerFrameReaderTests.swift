import MesosCodec
import NIOCore
import NIOPosix
import SystemSupport
import Testing
import WorkerWire

@testable import WorkerPool

#if canImport(Glibc)
    import Glibc
#endif

/// The reader of a worker's output pipe, over a real pipe whose other end the test writes as the
/// worker would.
@Suite(.timeLimit(.minutes(2)))
struct WorkerFrameReaderTests {
    /// A reader on the read end of a new pipe; `body` gets the write end (closed after it unless
    /// closed already: pass it back as -1), the messages and the reader's pacing.
    private func withReader(
        _ body: (
            _ worker: inout Int32, _ messages: AsyncStream<WorkerFrameReader.Message>,
            _ pacing: WorkerFrameReader.Pacing,
            _ channel: any Channel
        ) async throws -> Void
    ) async throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        let (messages, delivery) = AsyncStream.makeStream(of: WorkerFrameReader.Message.self)
        let pacing = WorkerFrameReader.Pacing()
        let flags = WorkerConnection.Flags()
        let channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelOption(ChannelOptions.autoRead, value: false)
            .takingOwnershipOfDescriptor(input: ends[0]) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        WorkerFrameReader(maximumMessageSize: 1 << 20, flags: flags, pacing: pacing, delivery: delivery)
                    )
                    return channel
                }
            }
        var worker = ends[1]
        defer { if worker >= 0 { close(worker) } }
        try await body(&worker, messages, pacing, channel)
        try? await channel.close()
    }

    private static func frames(_ messages: [FromWorker]) -> [UInt8] {
        var buffer = ByteBuffer()
        for message in messages { RecordIO.encode(message.encoded(), into: &buffer) }
        return Array(buffer.readableBytesView)
    }

    private static func write(_ bytes: [UInt8], to descriptor: Int32) -> Bool {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
            if written < 0 && errno == EINTR { continue }
            if written <= 0 { return false }
            offset += written
        }
        return true
    }

    private static let hello = FromWorker.hello(
        WorkerHello(workerName: "test-worker", functions: ["f"], concurrency: 1))

    @Test func messagesArriveInTheWorkersOrderAndTheStreamEndsWithThePipe() async throws {
        try await withReader { worker, messages, pacing, channel in
            let bytes = Self.frames([
                Self.hello,
                .result(RunResult(id: 1, status: .ok, data: [1])),
                .result(RunResult(id: 2, status: .ok, data: [2])),
                .progress(RunProgress(id: 3, fraction: 0.5, message: "half")),
                .result(RunResult(id: 3, status: .ok)),
            ])
            // One byte at a time as well as all at once: frames split anywhere are put together.
            #expect(Self.write(Array(bytes[..<7]), to: worker))
            #expect(Self.write(Array(bytes[7...]), to: worker))
            close(worker)
            worker = -1
            var seen: [String] = []
            for await message in messages {
                switch message {
                case .hello(let hello): seen.append("hello \(hello.workerName)")
                case .results(let results): seen.append("results \(results.map(\.id))")
                case .progress(let progress): seen.append("progress \(progress.id) \(progress.message)")
                case .protocolError(let why): seen.append("error \(why)")
                }
                pacing.consumed(by: channel)
            }
            #expect(seen == ["hello test-worker", "results [1, 2]", "progress 3 half", "results [3]"])
        }
    }

    @Test(arguments: [
        ([FromWorker.result(RunResult(id: 1, status: .ok))], "sent a result before its hello"),
        ([hello, hello], "said hello twice"),
        (
            [FromWorker.hello(WorkerHello(protocolVersion: 99, workerName: "w", functions: [], concurrency: 1))],
            "speaks worker protocol version 99; this executor speaks version \(workerProtocolVersion)"
        ),
    ])
    func aWorkerThatBreaksTheProtocolIsToldAndItsPipeClosed(frames: [FromWorker], problem: String) async throws {
        try await withReader { worker, messages, pacing, channel in
            // What follows the broken message is never read as a message.
            #expect(Self.write(Self.frames(frames + [.result(RunResult(id: 7, status: .ok))]), to: worker))
            var errors: [String] = []
            for await message in messages {
                if case .protocolError(let why) = message { errors.append(why) }
                pacing.consumed(by: channel)
            }
            #expect(errors == [problem])
            try await channel.closeFuture.get()
        }
    }

    @Test func bytesThatAreNotFramesAreAProtocolError() async throws {
        try await withReader { worker, messages, pacing, channel in
            #expect(Self.write(Array("not a frame\n".utf8), to: worker))
            var errors: [String] = []
            for await message in messages {
                if case .protocolError(let why) = message { errors.append(why) }
                pacing.consumed(by: channel)
            }
            #expect(errors.count == 1)
            #expect(errors.first?.hasPrefix("sent bytes that are not RecordIO frames") == true, "\(errors)")
        }
    }

    /// A worker that writes faster than its messages are handled is held back by its pipe: the
    /// reader stops reading while messages wait, and once they are handled it reads on, losing
    /// nothing.
    @Test func aWorkerAheadOfTheExecutorIsHeldBackByItsPipeAndLosesNothing() async throws {
        try await withReader { worker, messages, pacing, channel in
            let count = 2_000
            let text = String(repeating: "x", count: 1_000)
            let bytes = Self.frames(
                [Self.hello] + (1...count).map { .progress(RunProgress(id: UInt64($0), fraction: 0, message: text)) })
            let descriptor = worker
            #expect(fcntl(descriptor, F_SETFL, O_NONBLOCK) == 0)
            // Written without blocking while nothing is handled: 2 MB is far more than the pipe holds
            // and the reader reads before it pauses, so the pipe fills and stays full.
            var offset = 0
            while offset < bytes.count && !Task.isCancelled {
                let written = bytes[offset...].withUnsafeBytes { Glibc.write(descriptor, $0.baseAddress, $0.count) }
                if written > 0 {
                    offset += written
                    continue
                }
                #expect(errno == EAGAIN || errno == EINTR)
                if pacing.isPaused { break }
                // Full, but the reader has not caught up yet: let the event loop run.
                try await channel.eventLoop.submit {}.get()
            }
            #expect(offset < bytes.count, "the reader read the whole 2 MB while nothing was handled")
            // Paused, it reads nothing more however often the event loop turns.
            let waiting = pacing.waitingCount
            for _ in 0..<3 { try await channel.eventLoop.submit {}.get() }
            #expect(pacing.waitingCount == waiting)
            // The rest is written as a worker blocked on its pipe would; everything arrives in order.
            #expect(fcntl(descriptor, F_SETFL, 0) == 0)
            let rest = Array(bytes[offset...])
            async let written = BlockingThread.run { Self.write(rest, to: descriptor) }
            var ids: [UInt64] = []
            for await message in messages {
                if case .progress(let progress) = message { ids.append(progress.id) }
                pacing.consumed(by: channel)
                if ids.count == count { break }
            }
            #expect(await written)
            #expect(ids == (1...count).map { UInt64($0) })
        }
    }
}
