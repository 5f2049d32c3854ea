import ExecutorCore
import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import ProcessSupervision
import SystemTestLock
import Testing

/// Tasks' stdout/stderr are rotated by size through the executor: bounded on disk, newest output kept.
@Suite(.serialized, .systemTest)
struct LogRotationEndToEndTests {
    /// The files of one stream, oldest first, and what they hold together.
    static func kept(_ directory: String, _ stream: String) -> (files: [String: Int], text: String) {
        var sizes: [String: Int] = [:]
        var text = ""
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0 == stream || $0.hasPrefix(stream + ".") }
        func age(_ name: String) -> Int { name == stream ? 0 : Int(name.dropFirst(stream.count + 1)) ?? 0 }
        let ordered = names.sorted { age($0) > age($1) }
        for name in ordered {
            let data = FileManager.default.contents(atPath: "\(directory)/\(name)") ?? Data()
            sizes[name] = data.count
            text += String(decoding: data, as: UTF8.self)
        }
        return (sizes, text)
    }

    @Test func aCommandTaskThatWritesMegabytesKeepsOnlyTheNewestWithinTheLimits() async throws {
        let code = try await ExecutorUnderTest.run(
            encoding: .protobuf,
            environment: ["SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE": "64KB", "SPARK_MESOS_EXECUTOR_LOG_MAX_FILES": "2"]
        ) { test in
            // About 2 MB on stdout and 0.6 MB on stderr: each rotated about 30 and 9 times.
            try await test.agent.launch(test.task("chatty", "seq 1 300000; seq 1 100000 >&2"))
            try await test.waitForStates(["chatty": .taskFinished])
            for (stream, count) in [("stdout", 300_000), ("stderr", 100_000)] {
                let (files, text) = Self.kept(test.path("tasks/chatty"), stream)
                #expect(Set(files.keys) == [stream, "\(stream).1", "\(stream).2"], "\(stream)")
                for (name, size) in files { #expect(size <= 65536, "\(name)") }
                #expect(text.utf8.count > 2 * 65536 - 20, "\(stream): two full files and the live one")
                let written = Array((1...count).map { "\($0)\n" }.joined().utf8)
                let kept = Array(text.utf8)
                #expect(Array(written.suffix(kept.count)) == kept, "\(stream): the newest output, with no gap")
                #expect(written.dropLast(kept.count).last == UInt8(ascii: "\n"), "\(stream): from a line start")
                let newest = try String(contentsOfFile: test.path("tasks/chatty/\(stream)"), encoding: .utf8)
                #expect(newest.hasSuffix("\(count - 1)\n\(count)\n"), "\(stream): the last lines in the live file")
            }
            await test.agent.shutdown()
        }
        #expect(code == 0)
    }

    @Test(.needsDemoWorker) func aWorkersOutputIsBoundedAndItsNewestLinesAreThereWhenTheResultIs() async throws {
        let code = try await ExecutorUnderTest.run(
            encoding: .protobuf,
            properties: [
                "spark.mesos.coarse": "true", "spark.executor.cores": "1",
                "spark.mesos.executor.worker": ClosureEndToEndTests.demoWorker,
                "spark.executor.logs.rolling.maxSize": "32768", "spark.executor.logs.rolling.maxRetainedFiles": "1",
            ]
        ) { test in
            let base64 = Data("200000".utf8).base64EncodedString()
            try await test.agent.launch(
                test.agent.makeTask("chatty", data: Array(#"{"function":"chatter","payload":"\#(base64)"}"#.utf8)))
            try await test.waitForStates(["chatty": .taskFinished])
            let (files, text) = Self.kept(test.path("workers/worker-0"), "stdout")
            #expect(Set(files.keys) == ["stdout", "stdout.1"])
            for (name, size) in files { #expect(size <= 32768, "\(name)") }
            let written = Array((1...200_000).map { "\($0)\n" }.joined().utf8)
            let kept = Array(text.utf8)
            #expect(kept.count > 32768 - 20)
            #expect(Array(written.suffix(kept.count)) == kept, "the newest output, up to the last line")
            await test.agent.shutdown()
        }
        #expect(code == 0)
    }

    /// How many GiB the test below writes: `SME_LOG_GIB`, unset by default.
    static let gibibytes = ProcessInfo.processInfo.environment["SME_LOG_GIB"].flatMap(Int.init)

    /// The real thing: 1 GiB through the default limits (10 MB × 5 rotated). `SME_LOG_GIB=1` runs it.
    /// Minutes of disk writing: out of `make test`.
    @Test(.enabled(if: gibibytes != nil, "set SME_LOG_GIB=1 to write a GiB through the executor"))
    func aGibibyteOfOutputLeavesAtMostTheDefaultLimitOnDisk() async throws {
        let gib = try #require(Self.gibibytes)
        let line = "a log line of a task that writes without end, as services and batch jobs do, and more\n"
        let code = try await ExecutorUnderTest.run(encoding: .protobuf) { test in
            try await test.agent.launch(
                test.task("gib", "yes '\(line.dropLast())' | head -c \(gib << 30); seq 1 1000"))
            try await test.waitForStates(["gib": .taskFinished])
            let (files, text) = Self.kept(test.path("tasks/gib"), "stdout")
            let total = files.values.reduce(0, +)
            print("1 GiB written: \(files.count) files, \(total) bytes kept: \(files.sorted { $0.key < $1.key })")
            #expect(files.count == 6)
            #expect(total <= LogRotation.default.maximumStreamBytes)
            for (name, size) in files { #expect(size <= LogRotation.default.maximumFileBytes, "\(name)") }
            let tail = (1...1000).map { "\($0)\n" }.joined()
            let newest = try String(contentsOfFile: test.path("tasks/gib/stdout"), encoding: .utf8)
            #expect(newest.hasSuffix(tail), "the last lines are in the newest file")
            #expect(text.hasSuffix(tail))
            await test.agent.shutdown()
        }
        #expect(code == 0)
    }
}
