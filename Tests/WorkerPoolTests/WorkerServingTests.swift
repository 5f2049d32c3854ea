import Foundation
import SystemSupport
import Testing
import WorkerWire

@testable import WorkerSDK

/// How the Swift SDK runs what it reads: a cancel reaches the run it names and no other, whether
/// the runs share a task (one at a time) or each has its own (several at once).
@Suite struct WorkerServingTests {
    /// A batch of runs read at once, the first cancelled while it runs: the runs behind it in the
    /// same batch run to their end, uncancelled.
    @Test(arguments: [1, 2])
    func aCancelledRunLeavesTheRunsBehindItUncancelled(concurrency: Int) async throws {
        let toWorker = try FrameWriterTests.Pipe()
        let fromWorker = try FrameWriterTests.Pipe()
        let (entered, enteredSignal) = AsyncStream.makeStream(of: Void.self)
        var worker = Worker(name: "cancels")
        worker.register("wait") { _ in
            enteredSignal.yield()
            try await Task.sleep(for: .seconds(3600))
            return []
        }
        worker.register("check") { payload in
            try Task.checkCancellation()
            await Task.yield()
            try Task.checkCancellation()
            return payload
        }
        let serving = worker.beginServing(concurrency: concurrency, input: toWorker.read, output: fromWorker.write)
        // All runs in one write before the reader starts: it reads them as one batch.
        var bytes: [UInt8] = []
        for (id, function) in [(UInt64(1), "wait"), (2, "check"), (3, "check"), (4, "check")] {
            let run = RunRequest(id: id, taskID: "t\(id)", function: function, payload: [UInt8(id)])
            Frame.append(ToWorker.run(run).encoded(), to: &bytes)
        }
        #expect(Glibc.write(toWorker.write, bytes, bytes.count) == bytes.count)
        serving.reader.startThread()
        async let status = worker.runAll(serving)
        for await _ in entered { break }
        var cancel: [UInt8] = []
        Frame.append(ToWorker.cancel(id: 1).encoded(), to: &cancel)
        #expect(Glibc.write(toWorker.write, cancel, cancel.count) == cancel.count)
        let results = try await BlockingThread.run { Result { try fromWorker.runResults(4) } }.get()
        toWorker.closeWrite()
        #expect(await status == 0)
        let byID = Dictionary(uniqueKeysWithValues: results.map { ($0.id, $0) })
        #expect(byID[1]?.status == .cancelled)
        for id: UInt64 in 2...4 {
            #expect(
                byID[id]?.status == .ok && byID[id]?.data == [UInt8(id)], "run \(id): \(String(describing: byID[id]))")
        }
    }
}
