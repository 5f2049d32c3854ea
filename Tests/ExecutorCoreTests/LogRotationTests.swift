import ExecutorCore
import Foundation
import SparkExecutor
import XCTest

@testable import ProcessSupervision

#if canImport(Glibc)
    import Glibc
#endif

final class LogRotationTests: XCTestCase {
    private var directory = ""

    override func setUpWithError() throws {
        directory = NSTemporaryDirectory() + "log-rotation-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

    private func contents(_ name: String) -> String? {
        FileManager.default.contents(atPath: "\(directory)/\(name)").map { String(decoding: $0, as: UTF8.self) }
    }

    private func files() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    func testSizesParseAsMesosWritesThem() {
        XCTAssertEqual(LogRotation.parseSize("10MB"), 10 << 20)
        XCTAssertEqual(LogRotation.parseSize("10mb"), 10 << 20)
        XCTAssertEqual(LogRotation.parseSize("4KiB"), 4096)
        XCTAssertEqual(LogRotation.parseSize("1GB"), 1 << 30)
        XCTAssertEqual(LogRotation.parseSize("4096"), 4096)
        XCTAssertEqual(LogRotation.parseSize(" 2 MB "), 2 << 20)
        XCTAssertNil(LogRotation.parseSize("1.5MB"))
        XCTAssertNil(LogRotation.parseSize("MB"))
        XCTAssertNil(LogRotation.parseSize("10XB"))
        XCTAssertNil(LogRotation.parseSize("-1MB"))
        XCTAssertNil(LogRotation.parseSize("99999999999999999999TB"))
        XCTAssertEqual(LogRotation.format(10 << 20), "10 MiB")
        XCTAssertEqual(
            LogRotation(maximumFileBytes: 1, rotatedFiles: -3), LogRotation(maximumFileBytes: 4096, rotatedFiles: 0))
    }

    func testTheEnvironmentAndSparkPropertiesSetTheLimits() throws {
        var environment = [
            "MESOS_FRAMEWORK_ID": "fw", "MESOS_EXECUTOR_ID": "ex", "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
        ]
        XCTAssertEqual(try Configuration(environment: environment, workingDirectory: "/").logRotation, .default)
        environment["SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE"] = "64KB"
        environment["SPARK_MESOS_EXECUTOR_LOG_MAX_FILES"] = "2"
        let base = try Configuration(environment: environment, workingDirectory: "/").logRotation
        XCTAssertEqual(base, LogRotation(maximumFileBytes: 65536, rotatedFiles: 2))
        for (name, value, expected) in [
            ("SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE", "1KB", "a size of at least 4KB, such as 10MB"),
            ("SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE", "lots", "a size of at least 4KB, such as 10MB"),
            ("SPARK_MESOS_EXECUTOR_LOG_MAX_FILES", "-1", "a count from 0 to 1000"),
        ] {
            var bad = environment
            bad[name] = value
            XCTAssertThrowsError(try Configuration(environment: bad, workingDirectory: "/")) { error in
                XCTAssertEqual("\(error)", "\(name)='\(value)' is malformed: expected \(expected)")
            }
        }
        let settings = try ExecutorSettings(
            executorInfo: nil,
            commandLine: [
                "spark.executor.logs.rolling.maxSize": "1048576", "spark.executor.logs.rolling.maxRetainedFiles": "0",
            ],
            environment: [:])
        XCTAssertEqual(settings.logRotation(overriding: base), LogRotation(maximumFileBytes: 1 << 20, rotatedFiles: 0))
        XCTAssertEqual(
            try ExecutorSettings(executorInfo: nil, commandLine: [:], environment: [:]).logRotation(overriding: base),
            base)
        XCTAssertThrowsError(
            try ExecutorSettings(
                executorInfo: nil, commandLine: ["spark.executor.logs.rolling.maxSize": "10 parsecs"], environment: [:])
        )
    }

    /// Lines of `width` bytes each, numbered from `first`.
    private func lines(_ range: Range<Int>, width: Int = 100) -> [UInt8] {
        var bytes: [UInt8] = []
        for number in range {
            let head = "line \(number) "
            bytes += Array(head.utf8) + Array(repeating: UInt8(ascii: "x"), count: width - head.utf8.count - 1) + [10]
        }
        return bytes
    }

    func testFilesStayBoundedRotateAtLineEndsAndKeepTheNewestOutput() throws {
        let rotation = LogRotation(maximumFileBytes: 4096, rotatedFiles: 2)
        var file = try RotatingLogFile(path: "\(directory)/stdout", rotation: rotation)
        var written: [UInt8] = []
        // Chunks of odd sizes, as reads from a pipe come.
        let all = lines(0..<1000)
        var offset = 0
        var size = 1
        while offset < all.count {
            let end = min(all.count, offset + size)
            all[offset..<end].withUnsafeBytes { file.append($0) }
            written += all[offset..<end]
            offset = end
            size = size * 7 % 5003 + 1
        }
        file.close()
        XCTAssertEqual(files(), ["stdout", "stdout.1", "stdout.2"])
        var kept = ""
        for name in ["stdout.2", "stdout.1", "stdout"] {
            let text = try XCTUnwrap(contents(name))
            XCTAssertLessThanOrEqual(text.utf8.count, 4096, name)
            kept += text
        }
        XCTAssertTrue(String(decoding: written, as: UTF8.self).hasSuffix(kept), "what is kept is the newest output")
        XCTAssertGreaterThan(kept.utf8.count, 4096 * 2, "at least two files' worth is kept")
        XCTAssertTrue(
            try XCTUnwrap(contents("stdout")).hasSuffix("line 999 " + String(repeating: "x", count: 90) + "\n"))
        for name in ["stdout.1", "stdout.2"] {
            XCTAssertTrue(try XCTUnwrap(contents(name)).hasSuffix("\n"), "\(name) ends at a line end")
        }
        XCTAssertTrue(kept.hasPrefix("line "), "files start with whole lines")
    }

    func testALineBegunInAFullFileMovesToTheNextOne() throws {
        var file = try RotatingLogFile(
            path: "\(directory)/stdout", rotation: LogRotation(maximumFileBytes: 4096, rotatedFiles: 1))
        let all = lines(0..<41)  // 4100 bytes
        // 4090 bytes (ending 90 bytes into line 40), then 10 more, which do not fit and hold no line end.
        all[..<4090].withUnsafeBytes { file.append($0) }
        all[4090..<4095].withUnsafeBytes { file.append($0) }
        all[4095...].withUnsafeBytes { file.append($0) }
        file.close()
        XCTAssertEqual(contents("stdout.1"), String(decoding: all[..<4000], as: UTF8.self))
        XCTAssertEqual(contents("stdout"), String(decoding: all[4000...], as: UTF8.self))
    }

    func testALineLongerThanAFileIsCutAndNoRotatedFilesAreKeptWithZero() throws {
        var file = try RotatingLogFile(
            path: "\(directory)/stderr", rotation: LogRotation(maximumFileBytes: 4096, rotatedFiles: 0))
        let long = [UInt8](repeating: UInt8(ascii: "a"), count: 10000)
        long.withUnsafeBytes { file.append($0) }
        file.close()
        XCTAssertEqual(files(), ["stderr"])
        XCTAssertEqual(contents("stderr")?.utf8.count, 10000 - 2 * 4096)
    }

    func testAnExistingFileCountsTowardsTheLimit() throws {
        let path = "\(directory)/stdout"
        _ = FileManager.default.createFile(atPath: path, contents: Data(lines(0..<40)))
        var file = try RotatingLogFile(path: path, rotation: LogRotation(maximumFileBytes: 4096, rotatedFiles: 1))
        XCTAssertEqual(file.size, 4000)
        lines(40..<41).withUnsafeBytes { file.append($0) }
        file.close()
        XCTAssertEqual(contents("stdout.1")?.utf8.count, 4000)
        XCTAssertEqual(contents("stdout"), String(decoding: lines(40..<41), as: UTF8.self))
    }

    func testAChildsOutputLandsThroughThePipeAndTheStreamEndsAtEOF() async throws {
        let streams = try StandardStreamFiles(
            directory: directory + "/tasks/t", rotation: LogRotation(maximumFileBytes: 4096, rotatedFiles: 1))
        let child = try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/sh", arguments: ["sh", "-c", "seq 1 5000; echo done >&2"], environment: [],
                workingDirectory: directory, fileDescriptors: streams.mappings))
        streams.close()
        let termination = await child.wait()
        XCTAssertEqual(termination, .exited(0))
        streams.flush()
        let expected = (1...5000).map { "\($0)\n" }.joined()
        let kept = try XCTUnwrap(contents("tasks/t/stdout.1")) + XCTUnwrap(contents("tasks/t/stdout"))
        XCTAssertTrue(expected.hasSuffix(kept))
        XCTAssertTrue(kept.hasSuffix("4999\n5000\n"))
        XCTAssertEqual(contents("tasks/t/stderr"), "done\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: directory + "/tasks/t/stdout.2"))
    }
}
