import Foundation
import SwiftProtobuf
import SystemSupport
import SparkExecutor
import TaskRunning
import Testing
@testable import WorkerPool
import WorkerProtocol

/// Collects the executor MESSAGEs the dispatcher sends.
final class SentMessages: Sendable {
    private let messages = LockedValue<[[UInt8]]>([])

    func send(_ message: [UInt8]) { messages.withLock { $0.append(message) } }

    var all: [[UInt8]] { messages.withLock { $0 } }

    func results() throws -> [Sparkmesos_Worker_V1_MiniTaskResult] { try Self.results(all) }

    static func results(_ messages: [[UInt8]]) throws -> [Sparkmesos_Worker_V1_MiniTaskResult] {
        try messages.flatMap { message -> [Sparkmesos_Worker_V1_MiniTaskResult] in
            if message.first == UInt8(ascii: "{") {
                return try Sparkmesos_Worker_V1_MiniTaskResults(jsonUTF8Bytes: message).results
            }
            return try Sparkmesos_Worker_V1_MiniTaskResults(serializedBytes: message).results
        }
    }
}

func miniBatch(_ tasks: [(id: String, function: String, payload: String)]) -> [UInt8] {
    var batch = Sparkmesos_Worker_V1_MiniTaskBatch()
    batch.tasks = tasks.map { task in
        var mini = Sparkmesos_Worker_V1_MiniTask()
        mini.id = task.id
        mini.function = task.function
        mini.payload = Data(task.payload.utf8)
        return mini
    }
    return try! batch.serializedBytes()
}

@Suite("Mini-tasks through framework messages")
struct MiniTaskDispatcherTests {
    @Test(arguments: [WorkerPoolConfiguration.Mode.coarse(workers: 2), .fine(maximumWorkers: 4)])
    func everyMiniTaskGetsExactlyOneResult(mode: WorkerPoolConfiguration.Mode) async throws {
        let count = mode == .coarse(workers: 2) ? 1000 : 60
        let sent = SentMessages()
        try await withPool(try poolConfiguration(mode)) { pool in
            let dispatcher = MiniTaskDispatcher(pool: pool, sandbox: pool.configuration.sandbox) { sent.send($0) }
            await withTaskGroup(of: Void.self) { group in
                for start in stride(from: 0, to: count, by: 50) {
                    let tasks = (start..<min(count, start + 50)).map { i in
                        (id: "m\(i)", function: i % 10 == 9 ? "fail" : "echo", payload: "p\(i)")
                    }
                    group.addTask { await dispatcher.handle(miniBatch(tasks)) }
                }
            }
        }
        let results = try sent.results()
        #expect(results.count == count)
        #expect(Set(results.map(\.id)).count == count)
        for result in results {
            let index = Int(result.id.dropFirst())!
            if index % 10 == 9 {
                #expect(result.state == "FAILED" && result.error == "closure 'fail' threw: p\(index)", "\(result)")
            } else {
                #expect(result.state == "FINISHED" && result.data == Data("p\(index)".utf8), "\(result)")
            }
        }
        if mode == .coarse(workers: 2) { #expect(sent.all.count < count, "results were not batched") }
    }

    /// Mini-tasks that would take what the pool holds past `maximumHeldMiniTaskBytes` end LOST at
    /// once, saying why, and the rest of their batch runs; what a mini-task held is given back as
    /// it ends (sent, answered, or lost with its worker), so the next batch runs whole.
    @Test(arguments: [WorkerPoolConfiguration.Mode.coarse(workers: 1), .fine(maximumWorkers: 2)])
    func miniTasksPastTheHeldBoundEndLostAndTheRestRun(mode: WorkerPoolConfiguration.Mode) async throws {
        var configuration = try poolConfiguration(mode)
        let each = WorkerPool.heldBytes(payload: 2, taskID: "m00", function: "echo", environment: [:])
        // Three fit, with room for the crashing one's longer function name; a fourth never does.
        configuration.maximumHeldMiniTaskBytes = 3 * each + 8
        let sent = SentMessages()
        /// Ids and payloads of one size; the one at `crashing` makes its worker exit (status 3).
        func batch(_ range: Range<Int>, crashing: Int? = nil) -> [UInt8] {
            miniBatch(
                range.map { i in
                    i == crashing
                        ? (id: i < 10 ? "m0\(i)" : "m\(i)", function: "crash", payload: "03")
                        : (id: i < 10 ? "m0\(i)" : "m\(i)", function: "echo", payload: "p\(i % 10)")
                })
        }
        try await withPool(configuration) { pool in
            let dispatcher = MiniTaskDispatcher(pool: pool, sandbox: pool.configuration.sandbox) { sent.send($0) }
            await dispatcher.handle(batch(0..<5))
            let first = try sent.results()
            #expect(first.count == 5)
            #expect(first.filter { $0.state == "FINISHED" }.map(\.id).sorted() == ["m00", "m01", "m02"])
            for result in first where result.state != "FINISHED" {
                #expect(result.state == "LOST", "\(result)")
                #expect(
                    result.error.hasPrefix("not run: the mini-tasks the executor holds (")
                        && result.error.contains("would go past spark.mesos.executor.miniTasks.maxHeldSize"),
                    "\(result.error)")
            }
            #expect(await pool.heldMiniTaskBytes == 0)
            await dispatcher.handle(batch(5..<8))
            #expect(try sent.results().filter { $0.state == "FINISHED" }.count == 6)
            // A worker that dies takes the mini-tasks it held with it; what they held is given back too.
            await dispatcher.handle(batch(8..<11, crashing: 10))
            #expect(try sent.results().count == 11)
            #expect(await pool.heldMiniTaskBytes == 0)
            await dispatcher.handle(batch(11..<14))
            #expect(try sent.results().suffix(3).allSatisfy { $0.state == "FINISHED" })
            // One that could never fit says so.
            await dispatcher.handle(
                miniBatch([(id: "huge", function: "echo", payload: String(repeating: "x", count: 4 * each))]))
            let huge = try #require(try sent.results().last)
            #expect(huge.id == "huge" && huge.state == "LOST", "\(huge)")
            #expect(
                huge.error.hasPrefix("not run: it takes ")
                    && huge.error.hasSuffix(
                        " alone, more than spark.mesos.executor.miniTasks.maxHeldSize (\(3 * each + 8) bytes)"),
                "\(huge.error)")
        }
    }

    /// Mini-tasks are written to their worker's pipe by the thread that sends them, and what the
    /// pipe does not take (64 KiB here) goes through the event loop, with what follows it until it
    /// is written: payloads several times the pipe's size, between small ones, all reach the one
    /// worker whole and in order (a frame cut or overtaken would be a protocol error, and the
    /// worker killed).
    @Test func miniTasksLargerThanTheWorkersPipeReachItWholeAndInOrder() async throws {
        let sent = SentMessages()
        let count = 60
        func payload(_ i: Int) -> String {
            i % 3 == 0 ? String(repeating: "\(i % 10)", count: 150_000 + i) : "p\(i)"
        }
        // Results over the size limit are read from the sandbox once the pool has ended.
        try await withSandbox { sandbox in
            var configuration = try poolConfiguration(.coarse(workers: 1))
            configuration.sandbox = sandbox
            try await withPool(configuration) { pool in
                let dispatcher = MiniTaskDispatcher(pool: pool, sandbox: pool.configuration.sandbox) { sent.send($0) }
                await withTaskGroup(of: Void.self) { group in
                    for start in stride(from: 0, to: count, by: 6) {
                        let tasks = (start..<start + 6).map { i in
                            (id: "m\(i)", function: "echo", payload: payload(i))
                        }
                        group.addTask { await dispatcher.handle(miniBatch(tasks)) }
                    }
                }
            }
            let results = try sent.results()
            #expect(results.count == count)
            for result in results {
                let index = Int(result.id.dropFirst())!
                #expect(result.state == "FINISHED", "\(result.id): \(result.state) \(result.error)")
                // A result over the dispatcher's size limit (64 KiB) is in a file of the sandbox.
                let data =
                    result.dataFile.isEmpty ? result.data : try Data(contentsOf: URL(fileURLWithPath: result.dataFile))
                let whole = data == Data(payload(index).utf8)
                #expect(whole, "\(result.id): \(data.count) bytes back for \(payload(index).utf8.count)")
            }
        }
    }

    /// A batch's `release` removes the result files the framework has read: the one named goes,
    /// one named twice (a message sent again) is no error, and nothing but a regular file in
    /// `results` is ever removed — a path outside it, through `..`, a link or a directory there is
    /// answered with a LOST result with an empty id that names it, and stays.
    @Test func resultFilesTheFrameworkReleasesAreRemovedAndNothingElse() async throws {
        let sent = SentMessages()
        try await withSandbox { sandbox in
            var configuration = try poolConfiguration(.coarse(workers: 1))
            configuration.sandbox = sandbox
            try await withPool(configuration) { pool in
                let dispatcher = MiniTaskDispatcher(pool: pool, sandbox: sandbox, resultSizeLimit: 4) { sent.send($0) }
                await dispatcher.handle(miniBatch([(id: "m1", function: "echo", payload: "a large result")]))
                let file = try #require(try sent.results().first?.dataFile)
                #expect(file == sandbox + "/results/mini-m1" && FileManager.default.fileExists(atPath: file))
                try Data("keep".utf8).write(to: URL(fileURLWithPath: sandbox + "/keep"))
                #expect(symlink(sandbox + "/keep", sandbox + "/results/link") == 0)
                #expect(mkdir(sandbox + "/results/sub", 0o750) == 0)
                let refused = [
                    sandbox + "/keep", sandbox + "/results/../keep", sandbox + "/results/link",
                    sandbox + "/results/sub", "/etc/passwd", sandbox + "/results/", "results/mini-m1",
                    sandbox + "/results/mini-m1\u{0}.2",
                ]
                var batch = Sparkmesos_Worker_V1_MiniTaskBatch()
                batch.release = [file, file] + refused
                let before = sent.all.count
                await dispatcher.handle(try batch.serializedBytes())
                #expect(!FileManager.default.fileExists(atPath: file))
                #expect(FileManager.default.fileExists(atPath: sandbox + "/keep"))
                var status = stat()
                #expect(lstat(sandbox + "/results/link", &status) == 0 && lstat(sandbox + "/results/sub", &status) == 0)
                let answers = try SentMessages.results(Array(sent.all[before...]))
                #expect(answers.count == refused.count)
                for (answer, path) in zip(answers, refused) {
                    #expect(answer.id == "" && answer.state == "LOST" && answer.error.hasPrefix("not released: "))
                    #expect(answer.error.contains("'\(path)'"), "\(answer.error)")
                }
                // A release already done, beside a mini-task: only the mini-task is answered.
                batch.release = [file]
                batch.tasks = [
                    Sparkmesos_Worker_V1_MiniTask.with {
                        ($0.id, $0.function, $0.payload) = ("m2", "echo", Data("ok".utf8))
                    }
                ]
                let count = sent.all.count
                await dispatcher.handle(try batch.serializedBytes())
                let last = try SentMessages.results(Array(sent.all[count...]))
                #expect(last.map(\.id) == ["m2"] && last.first?.data == Data("ok".utf8))
            }
        }
    }

    /// A batch that cannot run (no worker, package missing) gets a result per mini-task; one that
    /// only releases result files gets none (no closure ran, so there are none); one that is no
    /// batch gets one with an empty id.
    @Test func aBatchThatCannotRunIsAnsweredForItsMiniTasksOnly() throws {
        var batch = Sparkmesos_Worker_V1_MiniTaskBatch()
        batch.release = ["/sandbox/results/mini-m1"]
        #expect(MiniTaskDispatcher.failAll(try batch.serializedBytes(), state: .lost, error: "no worker") == nil)
        batch.tasks = [Sparkmesos_Worker_V1_MiniTask.with { ($0.id, $0.function) = ("m2", "echo") }]
        let answer = try #require(
            MiniTaskDispatcher.failAll(try batch.serializedBytes(), state: .lost, error: "no worker"))
        #expect(
            try SentMessages.results([answer]).map { [$0.id, $0.state, $0.error] } == [["m2", "LOST", "no worker"]])
        let garbage = try #require(MiniTaskDispatcher.failAll(Array("{nope".utf8), state: .lost, error: "no worker"))
        #expect(try SentMessages.results([garbage]).map(\.id) == [""])
    }

    @Test func jsonBatchesGetJSONResultsAndBadBatchesAreReported() async throws {
        let sent = SentMessages()
        try await withPool(try poolConfiguration(.coarse(workers: 1))) { pool in
            let dispatcher = MiniTaskDispatcher(pool: pool, sandbox: pool.configuration.sandbox) { sent.send($0) }
            await dispatcher.handle(
                Array(
                    #"{"tasks": [{"id": "j1", "function": "echo", "payload": "aGk="}, {"id": "j2", "function": "nope"}]}"#
                        .utf8))
            // Alone in its batch: a crash takes the results still queued in the worker with it.
            await dispatcher.handle(Array(#"{"tasks": [{"id": "j3", "function": "crash", "payload": "Mw=="}]}"#.utf8))
            await dispatcher.handle(Array(#"{"tasks": 7}"#.utf8))
            await dispatcher.handle(
                Array(#"{"tasks": [{"id": "j4", "function": "echo", "environment": {"A=B": "1"}}]}"#.utf8))
        }
        #expect(sent.all.allSatisfy { $0.first == UInt8(ascii: "{") })
        let results = Dictionary(uniqueKeysWithValues: try sent.results().map { ($0.id, $0) })
        #expect(results["j1"]?.state == "FINISHED" && results["j1"]?.data == Data("hi".utf8))
        #expect(results["j2"]?.state == "FAILED" && results["j2"]?.error.contains("no function 'nope'") == true)
        #expect(results["j3"]?.state == "LOST" && results["j3"]?.error.contains("exited with status 3") == true)
        #expect(results[""]?.state == "LOST" && results[""]?.error.contains("not a MiniTaskBatch") == true)
        #expect(
            results["j4"]?.state == "FAILED"
                && results["j4"]?.error == "mini-task 'j4': environment variable name 'A=B' is not valid")
    }
}
