import Foundation
import SystemSupport
import Testing
import WorkerWire

@testable import WorkerSDK

/// The Swift SDK's writer to the executor: results that may wait are held until the next frame
/// that may not, the hold limit or the end, and every frame goes out once, in order.
@Suite struct FrameWriterTests {
    /// A pipe whose read end the test reads what the writer wrote from.
    final class Pipe: @unchecked Sendable {
        let read: Int32
        let write: Int32
        private var writeClosed = false
        private var decoder = FrameDecoder()

        init() throws {
            var ends: [Int32] = [0, 0]
            guard pipe(&ends) == 0 else { throw POSIXError(.EIO) }
            (read, write) = (ends[0], ends[1])
        }

        deinit {
            close(read)
            closeWrite()
        }

        func closeWrite() {
            guard !writeClosed else { return }
            writeClosed = true
            close(write)
        }

        /// The frames the pipe holds now, decoded.
        func framesNow() throws -> [FromWorker] {
            var bytes = [UInt8](repeating: 0, count: waitingBytes)
            if !bytes.isEmpty { _ = Glibc.read(read, &bytes, bytes.count) }
            decoder.feed(bytes)
            var frames: [FromWorker] = []
            while let frame = try decoder.next() { frames.append(try FromWorker(decoding: frame)) }
            return frames
        }

        /// How many bytes wait in the pipe now.
        var waitingBytes: Int {
            var count: Int32 = 0
            _ = ioctl(read, UInt(FIONREAD), &count)
            return Int(count)
        }

        /// The ids of the next `count` results, read as they come (a minute at most for each read).
        func results(_ count: Int) throws -> [UInt64] {
            try runResults(count).map(\.id)
        }

        /// The next `count` results, read as they come (a minute at most for each read).
        func runResults(_ count: Int) throws -> [RunResult] {
            var results: [RunResult] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while results.count < count {
                while let frame = try decoder.next() {
                    guard case .result(let result) = try FromWorker(decoding: frame) else { continue }
                    results.append(result)
                }
                if results.count == count { break }
                var ready = pollfd(fd: read, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 60_000) == 1 else { break }
                let got = Glibc.read(read, &buffer, buffer.count)
                guard got > 0 else { break }
                decoder.feed(buffer[..<got])
            }
            return results
        }
    }

    static func result(_ id: UInt64) -> FromWorker { .result(RunResult(id: id, status: .ok, data: [1, 2, 3])) }

    @Test func heldResultsGoOutWithTheNextResultThatMayNotWaitInOneWrite() throws {
        let pipe = try Pipe()
        let writer = FrameWriter(descriptor: pipe.write, holdLimit: .seconds(600))
        for id: UInt64 in 1...3 { writer.send(Self.result(id), mayWait: true) }
        // Held: far from their limit, nothing is written yet.
        #expect(pipe.waitingBytes == 0)
        writer.send(Self.result(4))
        // Written on the sender's thread before `send` returns, all four together.
        #expect(pipe.waitingBytes > 0)
        #expect(try pipe.results(4) == [1, 2, 3, 4])
        #expect(pipe.waitingBytes == 0)
        writer.finish()
    }

    @Test func aHeldResultGoesOutAtItsLimitWhenNothingFollows() throws {
        let pipe = try Pipe()
        let writer = FrameWriter(descriptor: pipe.write, holdLimit: .milliseconds(1))
        writer.send(Self.result(7), mayWait: true)
        // No other frame comes: the writer's thread writes it once the limit has passed.
        #expect(try pipe.results(1) == [7])
        writer.send(Self.result(8), mayWait: true)
        writer.send(Self.result(9), mayWait: true)
        #expect(try pipe.results(2) == [8, 9])
        writer.finish()
    }

    @Test func finishWritesWhatIsHeld() throws {
        let pipe = try Pipe()
        let writer = FrameWriter(descriptor: pipe.write, holdLimit: .seconds(600))
        writer.send(Self.result(1), mayWait: true)
        writer.send(Self.result(2), mayWait: true)
        writer.finish()
        #expect(try pipe.results(2) == [1, 2])
    }

    /// Senders on several threads, some holding and some not: every frame arrives once, each
    /// thread's in the order it sent them.
    @Test func framesFromSeveralThreadsArriveOnceInEachThreadsOrder() async throws {
        let pipe = try Pipe()
        let writer = FrameWriter(descriptor: pipe.write, holdLimit: .microseconds(200))
        let threads = 4
        let perThread = 2_000
        // Blocking reads and writes, each on a thread of its own (not the few cooperative ones: a
        // writer blocked on a full pipe must not keep the reader from running).
        async let read = BlockingThread.run { Result { try pipe.results(threads * perThread) } }
        await withTaskGroup(of: Void.self) { group in
            for thread in 0..<threads {
                group.addTask {
                    await BlockingThread.run {
                        for index in 0..<perThread {
                            let id = UInt64(thread * perThread + index)
                            writer.send(Self.result(id), mayWait: index % 5 != 4)
                        }
                    }
                }
            }
        }
        writer.finish()
        let ids = try await read.get()
        #expect(ids.count == threads * perThread)
        #expect(Set(ids).count == threads * perThread)
        for thread in 0..<threads {
            let mine = ids.filter { Int($0) / perThread == thread }
            #expect(mine == mine.sorted())
        }
    }

    /// Which results a worker holds: a mini-task's (`result_may_wait`) with another run read
    /// behind it; never a task's, so that a crash of the run behind a finished task cannot take its
    /// result along.
    @Test(arguments: [true, false])
    func onlyAMiniTasksResultWaitsForTheRunBehindIt(resultMayWait: Bool) async throws {
        let toWorker = try Pipe()
        let fromWorker = try Pipe()
        let (entered, enteredSignal) = AsyncStream.makeStream(of: Void.self)
        let (release, releaseSignal) = AsyncStream.makeStream(of: Void.self)
        var worker = Worker(name: "held")
        worker.register("echo") { $0 }
        worker.register("wait") { _ in
            enteredSignal.yield()
            for await _ in release { break }
            return []
        }
        let serving = worker.beginServing(
            concurrency: 1, input: toWorker.read, output: fromWorker.write, holdLimit: .seconds(600))
        // Both runs in one write before the reader starts: it reads them as one batch.
        var bytes: [UInt8] = []
        for (id, function) in [(UInt64(1), "echo"), (2, "wait")] {
            let run = RunRequest(
                id: id, taskID: "t\(id)", function: function, payload: [7], resultMayWait: resultMayWait)
            Frame.append(ToWorker.run(run).encoded(), to: &bytes)
        }
        #expect(Glibc.write(toWorker.write, bytes, bytes.count) == bytes.count)
        serving.reader.startThread()
        async let status = worker.runAll(serving)
        // The second run has started, so the first has ended and its result was written or held.
        for await _ in entered { break }
        let now = try fromWorker.framesNow()
        guard case .hello = now.first else {
            Issue.record("the worker's first frame is not its hello: \(now)")
            return
        }
        let early = now.dropFirst().compactMap { frame -> UInt64? in
            if case .result(let result) = frame { result.id } else { nil }
        }
        #expect(early == (resultMayWait ? [] : [1]))
        releaseSignal.yield()
        toWorker.closeWrite()
        #expect(await status == 0)
        let late = try fromWorker.framesNow().compactMap { frame -> UInt64? in
            if case .result(let result) = frame { result.id } else { nil }
        }
        #expect(early + late == [1, 2])
    }
}
