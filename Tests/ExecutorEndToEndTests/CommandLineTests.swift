import ExecutorCore
import Foundation
import SystemTestLock
import Testing

/// The executor program's own command line, read without swift-argument-parser: help, version,
/// usage errors (exit 64), the cache commands and run mode's tolerance of Mesos's flags.
@Suite(.systemTest)
struct CommandLineTests {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    static func executor(_ arguments: [String], environment: [String: String] = [:]) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: BinaryEndToEndTests.executable)
        process.arguments = arguments
        process.environment = environment
        let stdout = Pipe()
        let stderr = Pipe()
        process.standardOutput = stdout
        process.standardError = stderr
        try process.run()
        // What the program writes to stderr is far below a pipe's 64 KiB, so reading stdout to its
        // end first cannot block the child.
        let output = stdout.fileHandleForReading.readDataToEndOfFile()
        let errorOutput = stderr.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: output, as: UTF8.self),
            stderr: String(decoding: errorOutput, as: UTF8.self))
    }

    @Test func versionIsPrinted() throws {
        let result = try Self.executor(["--version"])
        #expect(result.status == 0)
        #expect(result.stdout.range(of: #"^\d+\.\d+\.\d+\n$"#, options: .regularExpression) != nil, "\(result.stdout)")
    }

    @Test func helpListsEveryEnvironmentVariableAndCommand() throws {
        for arguments in [["--help"], ["-h"], ["help"]] {
            let result = try Self.executor(arguments)
            #expect(result.status == 0, "\(arguments)")
            for variable in EnvironmentVariable.allCases {
                #expect(result.stdout.contains("  \(variable.name)\n      \(variable.meaning)\n"), "\(variable.name)")
            }
            for text in [
                "[run]", "--log-level", "--conf", "--cache-dir", "--encoding", " harness ", " cache list|prune|clear",
            ] {
                #expect(result.stdout.contains(text), "\(arguments): \(text)")
            }
        }
    }

    @Test(arguments: [["run", "--help"], ["help", "run"], ["cache", "--help"], ["cache"], ["help", "cache"]])
    func subcommandHelp(_ arguments: [String]) throws {
        let result = try Self.executor(arguments)
        #expect(result.status == 0)
        #expect(result.stdout.hasPrefix("OVERVIEW: "))
        #expect(result.stdout.contains(arguments.contains("run") ? "--log-level <level>" : "CACHE COMMANDS:"))
    }

    @Test(arguments: [
        (["--log-level", "nope"], "--log-level 'nope' is not valid"),
        (["run", "--log-level"], "missing value for '--log-level'"),
        (["--conf"], "missing value for '--conf'"),
        (["cache", "list", "--bogus"], "unknown argument '--bogus' for 'cache list'"),
        (["cache", "list", "--max-bytes", "5"], "unknown argument '--max-bytes' for 'cache list'"),
        (["cache", "prune", "--max-bytes=lots"], "--max-bytes 'lots' is not a number of bytes"),
        (["cache", "prune", "--max-bytes", "-1"], "--max-bytes '-1' is not a number of bytes"),
        (["cache", "frob"], "unknown cache command 'frob'"),
        (["cache", "--dir", "/tmp"], "expected list, prune or clear after 'cache'"),
    ])
    func usageErrorsExit64WithTheMessageAndUsage(_ arguments: [String], _ message: String) throws {
        let result = try Self.executor(arguments)
        #expect(result.status == 64, "\(arguments)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderr.hasPrefix("Error: \(message)"), "\(result.stderr)")
        #expect(result.stderr.contains("\nUsage: spark-mesos-executor "), "\(result.stderr)")
    }

    /// Mesos starts its command executor with flags of its own; run mode ignores them and goes on to
    /// read its environment (here empty, so it stops at the first required variable, exit 1).
    @Test func runModeIgnoresUnknownFlagsAndReadsItsEnvironment() throws {
        for arguments in [
            ["--launcher_dir=/usr/libexec/mesos", "--sandbox_directory", "/mnt/mesos/sandbox"],
            ["run", "--log-level=error", "--conf", "spark.a=b", "--cache-dir=/nonexistent", "extra"],
        ] {
            let result = try Self.executor(arguments)
            #expect(result.status == 1, "\(arguments)")
            #expect(result.stderr.contains("MESOS_FRAMEWORK_ID is not set"), "\(result.stderr)")
        }
    }

    @Test func cacheCommandsWorkOnADirectory() throws {
        try ExecutorUnderTest.withSandbox { sandbox in
            let directory = sandbox + "/cache"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            let list = try Self.executor(["cache", "list", "--dir", directory])
            #expect(list.status == 0)
            #expect(list.stdout.hasPrefix("SHA256 "))
            #expect(list.stdout.hasSuffix("0 entries, 0 bytes in \(directory)\n"), "\(list.stdout)")
            // The directory can come from the environment too.
            let prune = try Self.executor(
                ["cache", "prune", "--max-bytes", "0"], environment: ["SPARK_MESOS_EXECUTOR_CACHE_DIR": directory])
            #expect(prune.status == 0)
            #expect(prune.stdout == "removed 0 entries, freed 0 bytes\n")
            let clear = try Self.executor(["cache", "clear", "--dir=\(directory)"])
            #expect(clear.status == 0)
            #expect(clear.stdout == "removed 0 entries, freed 0 bytes\n")
        }
    }
}
