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

/// What the pool sends a worker, over a real pipe whose other end the test reads as the worker
/// would: written by the sending thread while the pipe takes it, through the event loop when it is
/// full, and always in the order sent.
@Suite(.timeLimit(.minutes(2)))
struct WorkerMailboxTests {
    /// A mailbox attached to a channel on the write end of a new pipe; `body` gets the mailbox, the
    /// read end (the worker's input, which it closes) and the channel.
    private func withMailbox(_ body: (WorkerMailbox, Int32, any Channel) async throws -> Void) async throws {
        var ends: [Int32] = [-1, -1]
        try #require(pipe(&ends) == 0)
        // The worker's output, never written: a channel without an input closes all of itself when
        // its output is closed, before what it has to write is written.
        var output: [Int32] = [-1, -1]
        try #require(pipe(&output) == 0)
        defer { close(output[1]) }
        // The mailbox's copy is made before the channel owns the descriptor, as the connection does.
        let copy = dup(ends[1])
        try #require(copy >= 0)
        let channel = try await NIOPipeBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .takingOwnershipOfDescriptors(input: output[0], output: ends[1]).get()
        let mailbox = WorkerMailbox()
        mailbox.attach(channel, input: copy)
        try await body(mailbox, ends[0], channel)
        mailbox.detach()
        try? await channel.close()
    }

    private static func run(_ id: UInt64, payloadBytes: Int) -> ToWorker {
        .run(
            RunRequest(
                id: id, taskID: "m\(id)", function: "echo",
                payload: [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: payloadBytes)))
    }

    /// Reads `count` bytes (fewer at the end of the input) from the blocking `descriptor`, on a
    /// thread of its own rather than the cooperative pool the suites share.
    private static func read(_ count: Int, from descriptor: Int32) async -> [UInt8] {
        await BlockingThread.run {
            var bytes = [UInt8](repeating: 0, count: count)
            var got = 0
            while got < count {
                let n = bytes[got...].withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress, $0.count) }
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                got += n
            }
            return Array(bytes[..<got])
        }
    }

    private static func messages(in bytes: [UInt8]) throws -> [ToWorker] {
        var buffer = ByteBuffer(bytes: bytes)
        var decoder = RecordIODecoder(maximumRecordSize: 1 << 24)
        var messages: [ToWorker] = []
        while let frame = try decoder.decode(buffer: &buffer) {
            messages.append(try ToWorker(decoding: ArraySlice(frame.readableBytesView)))
        }
        #expect(buffer.readableBytes == 0, "a frame was cut")
        return messages
    }

    @Test func messagesSentWhileThePipeIsFullFollowWhatFilledItInTheOrderSent() async throws {
        try await withMailbox { mailbox, worker, _ in
            defer { close(worker) }
            // 1 MiB: the pipe (64 KiB) takes its start, the event loop has the rest to write.
            let large = Self.run(1, payloadBytes: 1 << 20)
            mailbox.send([large], writtenHere: true)
            var read: [UInt8] = []
            var sent = [large]
            // Each small message is sent just after the worker has made room in the pipe: it must
            // still wait behind the large one, not be written into the middle of it.
            for id in UInt64(2)...60 {
                read += await Self.read(4096, from: worker)
                let small = Self.run(id, payloadBytes: 10)
                mailbox.send([small], writtenHere: id % 2 == 0)
                sent.append(small)
            }
            mailbox.finish()
            read += await Self.read(1 << 24, from: worker)
            let received = try Self.messages(in: read)
            #expect(received == sent)
        }
    }

    @Test func aWriteToAWorkerThatClosedItsInputClosesItsChannel() async throws {
        try await withMailbox { mailbox, worker, channel in
            close(worker)
            // EPIPE (SIGPIPE is ignored, as the pool ignores it): the worker can never be reached
            // again, and its connection ends as when the channel's own write fails.
            signal(SIGPIPE, SIG_IGN)
            mailbox.send([Self.run(1, payloadBytes: 10)], writtenHere: true)
            try await channel.closeFuture.get()
            mailbox.send([Self.run(2, payloadBytes: 10)], writtenHere: true)
        }
    }
}
