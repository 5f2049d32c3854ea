import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import SystemSupport
import SystemTestLock
import Testing

/// Closure tasks and mini-task batches through the whole executor, with the demo worker.
@Suite(.serialized, .systemTest)
struct ClosureEndToEndTests {
    static var demoWorker: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("demo-worker").path
    }

    private func closure(_ test: ExecutorUnderTest, _ id: String, _ function: String, _ payload: String)
        -> Mesos_V1_TaskInfo
    {
        let base64 = Data(payload.utf8).base64EncodedString()
        return test.agent.makeTask(id, data: Array(#"{"function":"\#(function)","payload":"\#(base64)"}"#.utf8))
    }

    private func properties(coarse: Bool) -> [String: String] {
        [
            "spark.mesos.coarse": coarse ? "true" : "false", "spark.executor.cores": "2",
            "spark.mesos.executor.worker": Self.demoWorker,
        ]
    }

    @Test(.needsDemoWorker) func closureOutcomesInBothModesAndEncodings() async throws {
        for coarse in [true, false] {
            for encoding in WireEncoding.allCases {
                let label = "\(coarse ? "coarse" : "fine") \(encoding)"
                try await ExecutorUnderTest.run(encoding: encoding, properties: properties(coarse: coarse)) { test in
                    try await test.agent.launch(self.closure(test, "echo", "echo", "hello closures"))
                    try await test.agent.launch(self.closure(test, "words", "wordcount", "a b a"))
                    try await test.agent.launch(self.closure(test, "throws", "fail", "bad input row 7"))
                    try await test.agent.launch(self.closure(test, "segv", "crash", ""))
                    try await test.agent.launch(self.closure(test, "nope", "no-such-function", ""))
                    try await test.agent.launch(test.agent.makeTask("garbage", data: Array("{not json".utf8)))
                    try await test.waitForStates([
                        "echo": .taskFinished, "words": .taskFinished, "throws": .taskFailed, "segv": .taskFailed,
                        "nope": .taskError, "garbage": .taskError,
                    ])
                    let observed = await test.agent.state
                    let last = Dictionary(
                        uniqueKeysWithValues: ["echo", "words", "throws", "segv", "nope", "garbage"].map { id in
                            (id, observed.updates(forTask: id).last!.status)
                        })
                    #expect(String(decoding: last["echo"]!.data, as: UTF8.self) == "hello closures", "\(label)")
                    #expect(!last["words"]!.data.isEmpty, "\(label)")
                    #expect(last["throws"]!.message.contains("bad input row 7"), "\(last["throws"]!.message)")
                    #expect(last["segv"]!.message.contains("SIGSEGV"), "\(last["segv"]!.message)")
                    #expect(last["nope"]!.reason == .taskInvalid, "\(label)")
                    #expect(last["garbage"]!.reason == .taskInvalid, "\(label)")
                    // A command task still runs beside the closures.
                    try await test.agent.launch(test.task("cmd", "true"))
                    try await test.waitForStates(["cmd": .taskFinished])
                    await assertNoViolations(test.agent)
                    await test.agent.shutdown()
                }
            }
        }
    }

    @Test(.needsDemoWorker) func workersStartOnceThePackageIsReadyBeforeAnyTask() async throws {
        for coarse in [true, false] {
            let signal = try StartSignal()
            var properties = properties(coarse: coarse)
            properties["spark.executorEnv.DEMO_STARTED_FIFO"] = signal.path
            try await ExecutorUnderTest.run(encoding: .protobuf, properties: properties) { test in
                // Coarse: the warm workers; fine: the fork server. No task has been launched.
                let started = await signal.wait()
                #expect(started, "no worker started within 60 s of SUBSCRIBED")
                let launched = await test.agent.state.updates
                #expect(launched.isEmpty, "no task was launched, yet: \(launched.count) updates")
                try await test.agent.launch(self.closure(test, "first", "echo", "warm"))
                try await test.waitForStates(["first": .taskFinished])
                await test.agent.shutdown()
            }
        }
    }

    @Test(.needsDemoWorker) func killOfARunningClosure() async throws {
        for coarse in [true, false] {
            try await ExecutorUnderTest.run(encoding: .protobuf, properties: properties(coarse: coarse)) { test in
                try await test.agent.launch(self.closure(test, "long", "sleep", "300000"))
                try await test.waitForStates(["long": .taskRunning])
                await test.agent.kill(taskID: "long")
                try await test.waitForStates(["long": .taskKilled])
                // The pool still serves: the killed closure's worker was replaced or freed.
                try await test.agent.launch(self.closure(test, "after", "echo", "still here"))
                try await test.waitForStates(["after": .taskFinished])
                await test.agent.shutdown()
            }
        }
    }

    @Test(.needsDemoWorker) func thousandMiniTasksEachReturnedExactlyOnce() async throws {
        for coarse in [true, false] {
            let total = coarse ? 1000 : 40
            try await ExecutorUnderTest.run(encoding: .json, properties: properties(coarse: coarse)) { test in
                for batch in stride(from: 0, to: total, by: 100) {
                    let tasks = (batch..<min(batch + 100, total)).map { index in
                        #"{"id":"m\#(index)","function":"echo","payload":"\#(Data("v\(index)".utf8).base64EncodedString())"}"#
                    }
                    await test.agent.sendMessage(Data(#"{"tasks":[\#(tasks.joined(separator: ","))]}"#.utf8))
                }
                let state = try await test.agent.waitUntil("\(total) mini-task results", timeout: .seconds(60)) {
                    state in
                    Self.results(state.messages).count >= total
                }
                let results = Self.results(state.messages)
                #expect(results.count == total)
                #expect(Set(results.map(\.id)).count == total, "every id exactly once")
                for result in results {
                    #expect(result.state == "FINISHED")
                    #expect(result.data == "v" + result.id.dropFirst())
                }
                await test.agent.shutdown()
            }
        }
    }

    /// A burst of mini-tasks is work as tasks are: the executor gives its memory back (`whenIdle`)
    /// once every result of the batches has been sent and nothing came for the settle time — not
    /// while a batch runs, and not never, which left a million queued mini-tasks' high-water mark
    /// in an idle executor's memory.
    @Test(.needsDemoWorker, .timeLimit(.minutes(3))) func theExecutorNoticesIdlenessOnceEveryBatchIsAnswered()
        async throws
    {
        let (idle, notice) = AsyncStream.makeStream(of: Void.self)
        try await ExecutorUnderTest.run(
            encoding: .json, properties: properties(coarse: true), whenIdle: { notice.yield() },
            idleSettle: .milliseconds(20)
        ) { test in
            var notices = idle.makeAsyncIterator()
            // Start-up is over: the first notice comes before any batch.
            _ = await notices.next()
            for burst in 0..<2 {
                // One batch a burst (two could be a burst each on a slow machine); its last
                // mini-task outlasts the settle time many times over.
                let tasks =
                    (0..<30).map { #"{"id":"b\#(burst)-\#($0)","function":"echo","payload":""}"# }
                    + [
                        #"{"id":"b\#(burst)-slow","function":"sleep","payload":"\#(Data("300".utf8).base64EncodedString())"}"#
                    ]
                await test.agent.sendMessage(Data(#"{"tasks":[\#(tasks.joined(separator: ","))]}"#.utf8))
                _ = await notices.next()
                // Only now: every result of the batch has reached the agent.
                let results = Self.results(await test.agent.state.messages).filter { $0.id.hasPrefix("b\(burst)-") }
                #expect(results.count == 31, "burst \(burst)")
                #expect(results.allSatisfy { $0.state == "FINISHED" })
            }
            await test.agent.shutdown()
        }
        notice.finish()
        var remaining = 0
        for await _ in idle { remaining += 1 }
        #expect(remaining == 0, "one notice per burst")
    }

    /// `spark.mesos.executor.miniTasks.maxHeldSize` bounds what mini-tasks waiting for their
    /// results take in the executor: of one batch of four 400 KB mini-tasks under a 1 MiB bound,
    /// two run and two end LOST at once, saying why; the executor goes on serving.
    @Test(.needsDemoWorker) func miniTasksPastTheHeldSizeAreLostWithTheReason() async throws {
        var properties = properties(coarse: true)
        properties["spark.mesos.executor.miniTasks.maxHeldSize"] = "1m"
        try await ExecutorUnderTest.run(encoding: .json, properties: properties) { test in
            let payload = Data(repeating: UInt8(ascii: "x"), count: 400_000).base64EncodedString()
            let tasks = (0..<4).map { #"{"id":"big\#($0)","function":"echo","payload":"\#(payload)"}"# }
            await test.agent.sendMessage(Data(#"{"tasks":[\#(tasks.joined(separator: ","))]}"#.utf8))
            let state = try await test.agent.waitUntil("4 mini-task results", timeout: .seconds(60)) {
                Self.results($0.messages).count >= 4
            }
            let results = Self.results(state.messages)
            #expect(results.filter { $0.state == "FINISHED" }.map(\.id).sorted() == ["big0", "big1"])
            #expect(results.filter { $0.state == "LOST" }.map(\.id).sorted() == ["big2", "big3"])
            for result in results where result.state == "LOST" {
                #expect(
                    result.error.contains("would go past spark.mesos.executor.miniTasks.maxHeldSize (1 MiB)"),
                    "\(result.error)")
            }
            await test.agent.sendMessage(Data(#"{"tasks":[{"id":"after","function":"echo","payload":""}]}"#.utf8))
            _ = try await test.agent.waitUntil("the next result") { state in
                Self.results(state.messages).contains { $0.id == "after" && $0.state == "FINISHED" }
            }
            await test.agent.shutdown()
        }
    }

    /// Results above `spark.mesos.executor.maxResultBytesInStatus` go to files in the sandbox (a
    /// closure task's path in its TASK_FINISHED message, a mini-task's in `data_file`); a framework
    /// MESSAGE releasing them removes them, and a path that is no result file is answered LOST.
    @Test(.needsDemoWorker) func resultFilesAreReleasedByTheFramework() async throws {
        var properties = properties(coarse: true)
        properties["spark.mesos.executor.maxResultBytesInStatus"] = "8"
        try await ExecutorUnderTest.run(encoding: .protobuf, properties: properties) { test in
            try await test.agent.launch(self.closure(test, "big", "echo", "a result of some length"))
            try await test.waitForStates(["big": .taskFinished])
            // The path is in the message and, for a program, in the label `result.data_file`.
            let status = try #require(await test.agent.state.updates(forTask: "big").last?.status)
            let taskFile = try #require(status.labels.labels.first { $0.key == "result.data_file" }?.value)
            #expect(status.message.hasSuffix("written to \(taskFile)"), "\(status.message)")
            #expect(taskFile.hasSuffix("/results/big") && FileManager.default.fileExists(atPath: taskFile))
            await test.agent.sendMessage(
                Data(#"{"tasks":[{"id":"m1","function":"echo","payload":"bWFueSBieXRlcyBsb25n"}]}"#.utf8))
            let mini = try await test.agent.waitUntil("a mini-task result") { !Self.results($0.messages).isEmpty }
            let miniFile = try #require(Self.results(mini.messages).first?.dataFile)
            #expect(miniFile.hasSuffix("/results/mini-m1") && FileManager.default.fileExists(atPath: miniFile))
            // The refusal is answered after the files named before it are gone.
            await test.agent.sendMessage(Data(#"{"release":["\#(taskFile)","\#(miniFile)","/etc/passwd"]}"#.utf8))
            let state = try await test.agent.waitUntil("the refusal") { state in
                Self.results(state.messages).contains { $0.id.isEmpty }
            }
            let refusal = try #require(Self.results(state.messages).first { $0.id.isEmpty })
            #expect(
                refusal.state == "LOST" && refusal.error.hasPrefix("not released: '/etc/passwd'"), "\(refusal.error)")
            #expect(
                !FileManager.default.fileExists(atPath: taskFile) && !FileManager.default.fileExists(atPath: miniFile))
            #expect(FileManager.default.fileExists(atPath: "/etc/passwd"))
            await assertNoViolations(test.agent)
            await test.agent.shutdown()
        }
    }

    @Test func miniTasksWithoutAWorkerAreLostWithTheReason() async throws {
        try await ExecutorUnderTest.run(encoding: .protobuf) { test in
            await test.agent.sendMessage(Data(#"{"tasks":[{"id":"x1","function":"echo","payload":""}]}"#.utf8))
            let state = try await test.agent.waitUntil("a result") { !Self.results($0.messages).isEmpty }
            let result = try #require(Self.results(state.messages).first)
            #expect(result.id == "x1")
            #expect(result.state == "LOST")
            #expect(result.error.contains("spark.mesos.executor.worker is not set"), "\(result.error)")
            await test.agent.shutdown()
        }
    }

    struct MiniResult {
        var id: String
        var state: String
        var data: String
        var error: String
        var dataFile = ""
    }

    static func results(_ messages: [Data]) -> [MiniResult] {
        messages.flatMap { message -> [MiniResult] in
            guard let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any],
                let results = object["results"] as? [[String: Any]]
            else { return [] }
            return results.map { entry in
                let data = (entry["data"] as? String).flatMap { Data(base64Encoded: $0) } ?? Data()
                return MiniResult(
                    id: entry["id"] as? String ?? "", state: entry["state"] as? String ?? "",
                    data: String(decoding: data, as: UTF8.self), error: entry["error"] as? String ?? "",
                    dataFile: entry["data_file"] as? String ?? "")
            }
        }
    }
}

/// A FIFO that programs write a byte to when they start; ``wait()`` returns at the first byte (or
/// false after a minute, so a broken build fails instead of hanging).
/// The test keeps both ends open, so a writer never blocks or fails and a read never sees EOF.
final class StartSignal: @unchecked Sendable {
    let path: String
    private let reader: Int32
    private let keeper: Int32

    init() throws {
        path = NSTemporaryDirectory() + "sme-started-" + UUID().uuidString
        guard mkfifo(path, 0o600) == 0 else { throw POSIXError(.EEXIST) }
        reader = open(path, O_RDONLY | O_NONBLOCK)
        keeper = open(path, O_WRONLY)
        _ = fcntl(reader, F_SETFL, 0)
    }

    func wait() async -> Bool {
        let reader = self.reader
        return await BlockingThread.run {
            var entry = pollfd(fd: reader, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 60_000) == 1 else { return false }
            var byte: UInt8 = 0
            return read(reader, &byte, 1) == 1
        }
    }

    deinit {
        close(reader)
        close(keeper)
        unlink(path)
    }
}

/// Progress reported by closures reaches the framework as executor MESSAGEs.
@Suite(.serialized, .systemTest)
struct ProgressEndToEndTests {
    struct Progress: Equatable {
        let taskID: String
        let fraction: Double
        let message: String
        let sequence: Int
    }

    static func progress(in messages: [Data]) -> [Progress] {
        messages.compactMap { data in
            guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                let progress = object["progress"] as? [String: Any]
            else { return nil }
            return Progress(
                taskID: progress["task_id"] as? String ?? "", fraction: progress["fraction"] as? Double ?? -1,
                message: progress["message"] as? String ?? "", sequence: progress["sequence"] as? Int ?? -1)
        }
    }

    private func closure(_ test: ExecutorUnderTest, _ id: String, _ function: String, _ payload: String)
        -> Mesos_V1_TaskInfo
    {
        let base64 = Data(payload.utf8).base64EncodedString()
        return test.agent.makeTask(id, data: Array(#"{"function":"\#(function)","payload":"\#(base64)"}"#.utf8))
    }

    @Test(.needsDemoWorker) func progressReachesTheFrameworkInOrderBoundedInRateAndNeverAfterTheEnd() async throws {
        for coarse in [true, false] {
            let label = coarse ? "coarse" : "fine"
            try await ExecutorUnderTest.run(
                encoding: .protobuf,
                properties: [
                    "spark.mesos.coarse": coarse ? "true" : "false", "spark.executor.cores": "2",
                    "spark.mesos.executor.worker": ClosureEndToEndTests.demoWorker,
                ]
            ) { test in
                let start = ContinuousClock.now
                // 5,000 reports as fast as the closure can make them, and a command task beside it.
                try await test.agent.launch(self.closure(test, "busy", "progress", "5000"))
                try await test.agent.launch(test.task("quiet", "true"))
                try await test.waitForStates(["busy": .taskFinished, "quiet": .taskFinished])
                let elapsed = ContinuousClock.now - start
                let state = await test.agent.state
                // Every message the framework got, with where it came among the updates.
                let progress = Self.progress(in: state.messages)
                #expect(!progress.isEmpty, "\(label): the first report is always forwarded")
                #expect(progress.allSatisfy { $0.taskID == "busy" }, "\(label)")
                #expect(progress.map(\.sequence) == Array(1...max(1, progress.count)), "\(label)")
                #expect(progress.map(\.fraction) == progress.map(\.fraction).sorted(), "\(label): in order")
                #expect(progress.allSatisfy { $0.message.hasPrefix("step ") }, "\(label)")
                // At most one per 100 ms, whatever the speed of the machine.
                let bound = Int(elapsed / .milliseconds(100)) + 1
                #expect(progress.count <= bound, "\(label): \(progress.count) in \(elapsed)")
                // None after the terminal update: the agent answered every message before it came.
                let calls = state.requests.compactMap(\.call)
                let terminal = calls.firstIndex {
                    $0.type == .update && $0.update.status.taskID.value == "busy"
                        && $0.update.status.state == .taskFinished
                }
                let lastMessage = calls.lastIndex { $0.type == .message }
                #expect(terminal != nil, "\(label)")
                if let terminal, let lastMessage { #expect(lastMessage < terminal, "\(label)") }
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }

    @Test(.needsDemoWorker) func garbageProgressFailsOnlyThatTaskWithAClearMessage() async throws {
        try await ExecutorUnderTest.run(
            encoding: .protobuf,
            properties: [
                "spark.mesos.coarse": "true", "spark.executor.cores": "1",
                "spark.mesos.executor.worker": ClosureEndToEndTests.demoWorker,
            ]
        ) { test in
            try await test.agent.launch(self.closure(test, "bad", "badprogress", ""))
            try await test.waitForStates(["bad": .taskFailed])
            let status = await test.agent.state.updates(forTask: "bad").last!.status
            #expect(status.message.contains("progress.fraction 7.0 is not within 0…1"), "\(status.message)")
            // The executor carries on: a replacement worker runs the next closure.
            try await test.agent.launch(self.closure(test, "after", "echo", "still here"))
            try await test.waitForStates(["after": .taskFinished])
            await test.agent.shutdown()
        }
    }
}
