import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import SystemTestLock
import Testing

/// The package named by spark.executor.uri, served over real HTTP by the local agent.
@Suite(.serialized, .systemTest)
struct FetchEndToEndTests {
    /// Runs `body` with a small Spark-like tarball (one top folder with bin/hello) and its sha256,
    /// removed afterwards.
    @discardableResult
    static func withPackage<Result>(
        isolation: isolated (any Actor)? = #isolation,
        _ body: ((path: String, sha256: String)) async throws -> Result
    ) async throws -> Result {
        try await ExecutorUnderTest.withSandbox { root in
            let bin = root + "/spark-test-1.0/bin"
            try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
            try "#!/bin/sh\necho \"hello from $SPARK_HOME\"\necho \"cwd $(pwd)\"\n".write(
                toFile: bin + "/hello", atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: bin + "/hello")
            let tarball = root + "/spark-test-1.0.tgz"
            try run("/bin/tar", ["czf", tarball, "-C", root, "spark-test-1.0"])
            let sum = try run("/usr/bin/sha256sum", [tarball]).split(separator: " ").first.map(String.init) ?? ""
            return try await body((tarball, sum))
        }
    }

    @discardableResult
    static func run(_ program: String, _ arguments: [String]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: program)
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

    /// The package becomes SPARK_HOME, linked from the cache (`spark.mesos.executor.cache.link`:
    /// `symlink` by default, `hardlinks` in the second run).
    @Test func packageIsFetchedVerifiedAndBecomesSparkHome() async throws {
        try await Self.withPackage { package in
            for encoding in WireEncoding.allCases {
                let link = encoding == .protobuf ? "symlink" : "hardlinks"
                // The URL needs the agent's port, so the properties are set once the agent listens.
                try await ExecutorUnderTest.run(
                    encoding: encoding,
                    properties: ["spark.executor.uri": "PLACEHOLDER"],
                    prepare: { agent in
                        let url = await agent.publish(file: package.path, as: "spark-test-1.0.tgz?token=abc")
                        await agent.setExecutorData(
                            #"{"spark.executor.uri":"\#(url)#sha256=\#(package.sha256)","spark.mesos.executor.cache.link":"\#(link)"}"#
                        )
                    }
                ) { test in
                    try await test.agent.launch(test.task("spark", "cd spark-*; ./bin/hello"))
                    try await test.waitForStates(["spark": .taskFinished])
                    let output = try String(contentsOfFile: test.path("tasks/spark/stdout"), encoding: .utf8)
                    #expect(
                        output == "hello from \(test.sandbox)/spark-test-1.0\ncwd \(test.sandbox)/spark-test-1.0\n",
                        "\(encoding)")
                    let type = try FileManager.default.attributesOfItem(atPath: test.path("spark-test-1.0"))[.type]
                    #expect(
                        (type as? FileAttributeType) == (link == "symlink" ? .typeSymbolicLink : .typeDirectory),
                        "\(link)")
                    await assertNoViolations(test.agent)
                    await test.agent.shutdown()
                }
            }
        }
    }

    @Test func failedFetchFailsTheTaskAndALaterTaskRetries() async throws {
        try await Self.withPackage { package in
            try await ExecutorUnderTest.run(
                encoding: .protobuf,
                properties: ["spark.executor.uri": "PLACEHOLDER"],
                prepare: { agent in
                    let url = await agent.fileURL("spark.tgz")
                    await agent.setExecutorData(#"{"spark.executor.uri":"\#(url)"}"#)
                }
            ) { test in
                try await test.agent.launch(test.task("early", "true"))
                try await test.waitForStates(["early": .taskFailed])
                let failed = await test.agent.state.updates(forTask: "early").last!.status
                #expect(failed.reason == .containerLaunchFailed)
                #expect(failed.message.contains("spark.tgz") && failed.message.contains("404"), "\(failed.message)")
                // The executor stays up; once the file exists, the next task fetches it again.
                await test.agent.publish(file: package.path, as: "spark.tgz")
                try await test.agent.launch(test.task("later", "cd spark-*; ./bin/hello"))
                try await test.waitForStates(["later": .taskFinished])
                await test.agent.shutdown()
            }
        }
    }

    @Test func checksumMismatchFailsTheTaskAndNothingIsUsed() async throws {
        try await Self.withPackage { package in
            try await ExecutorUnderTest.run(
                encoding: .json,
                properties: ["spark.executor.uri": "PLACEHOLDER"],
                prepare: { agent in
                    let url = await agent.publish(file: package.path, as: "spark.tgz")
                    let wrong = String(repeating: "0", count: 64)
                    await agent.setExecutorData(#"{"spark.executor.uri":"\#(url)#sha256=\#(wrong)"}"#)
                }
            ) { test in
                try await test.agent.launch(test.task("checked", "ls"))
                try await test.waitForStates(["checked": .taskFailed])
                let failed = await test.agent.state.updates(forTask: "checked").last!.status
                #expect(failed.message.lowercased().contains("sha256"), "\(failed.message)")
                #expect(!FileManager.default.fileExists(atPath: test.path("spark-test-1.0")))
                await test.agent.shutdown()
            }
        }
    }

    /// A package larger than the executor's `disk` resource (1 MB here, 3 MiB of incompressible
    /// data in the package): the download stops at the limit, the task fails with a message naming
    /// it, and neither the sandbox nor the cache keeps anything of it.
    @Test func aPackageLargerThanTheDiskResourceIsRefusedAndNothingIsLeft() async throws {
        try await ExecutorUnderTest.withSandbox { root in
            try FileManager.default.createDirectory(atPath: root + "/spark-big-1.0", withIntermediateDirectories: true)
            var generator = SystemRandomNumberGenerator()
            let noise = Data((0..<(3 << 20)).map { _ in UInt8.random(in: 0...255, using: &generator) })
            try noise.write(to: URL(fileURLWithPath: root + "/spark-big-1.0/noise"))
            try Self.run("/bin/tar", ["czf", root + "/spark-big-1.0.tgz", "-C", root, "spark-big-1.0"])
            try await ExecutorUnderTest.run(
                encoding: .protobuf,
                properties: ["spark.executor.uri": "PLACEHOLDER"],
                adjust: { configuration in
                    var disk = Mesos_V1_Resource()
                    disk.name = "disk"
                    disk.type = .scalar
                    disk.scalar.value = 1
                    configuration.executorInfo.resources.append(disk)
                },
                prepare: { agent in
                    let url = await agent.publish(file: root + "/spark-big-1.0.tgz", as: "spark-big-1.0.tgz")
                    await agent.setExecutorData(#"{"spark.executor.uri":"\#(url)"}"#)
                }
            ) { test in
                try await test.agent.launch(test.task("big", "true"))
                try await test.waitForStates(["big": .taskFailed])
                let failed = await test.agent.state.updates(forTask: "big").last!.status
                #expect(failed.reason == .containerLaunchFailed)
                #expect(failed.message.contains("spark-big-1.0.tgz"), "\(failed.message)")
                #expect(
                    failed.message.contains(
                        "the fetched files would take more than the executor's disk resource allows (1048576 bytes, "
                            + "0 of them taken by the URIs fetched before); nothing was installed"),
                    "\(failed.message)")
                // Nothing of the package: no tree, no staging directory, no cache entry.
                let left = try FileManager.default.contentsOfDirectory(atPath: test.sandbox).filter {
                    $0.hasPrefix("spark-big") || $0.hasPrefix(".fetch-")
                }
                #expect(left == [])
                for part in ["objects", "uris", "tmp"] {
                    let entries = try FileManager.default.contentsOfDirectory(atPath: test.path(".cache/\(part)"))
                    #expect(entries == [], "the cache's \(part) keeps nothing of a download stopped at the limit")
                }
                await test.agent.shutdown()
            }
        }
    }

    @Test func malformedSparkPropertyFailsTasksWithTheKeyAndValue() async throws {
        try await ExecutorUnderTest.run(encoding: .protobuf, properties: ["spark.executor.cores": "two"]) { test in
            try await test.agent.launch(test.task("any", "true"))
            try await test.waitForStates(["any": .taskFailed])
            let failed = await test.agent.state.updates(forTask: "any").last!.status
            #expect(
                failed.message
                    == "Executor configuration: spark.executor.cores='two' is malformed: expected a whole number of at least 1"
            )
            await test.agent.shutdown()
        }
    }
}
