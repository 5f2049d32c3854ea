import Foundation
import Harness
import MesosProto
import XCTest

/// Where the built binaries and the example job files are.
enum HarnessTestSupport {
    /// The build folder holding this test bundle (and the executor built next to it).
    static var buildDirectory: String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return (executable as NSString).deletingLastPathComponent
    }

    /// The real executor binary; skips the test when it has not been built.
    static func executor() throws -> String {
        let path = buildDirectory + "/spark-mesos-executor"
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw XCTSkip("\(path) is missing: build it first with `swift build --product spark-mesos-executor`")
        }
        return path
    }

    /// `Sources/Harness/Examples`.
    static var examples: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Harness/Examples").path
    }

    /// A fresh directory for a run's temporary files, so a test can check they are all gone.
    static func temporaryDirectory() throws -> String {
        let path = NSTemporaryDirectory() + "harness-tests-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// Runs `job` with the real executor in a private temporary directory, asserts that
    /// nothing is left there afterwards, and returns the report.
    static func run(_ job: Job, executor: String? = nil, file: StaticString = #filePath, line: UInt = #line)
        async throws -> RunReport
    {
        var options = HarnessOptions(executorPath: try executor ?? Self.executor())
        let temporary = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: temporary) }
        options.temporaryDirectory = temporary
        let report = try await JobRunner.run(job, options: options)
        let left = try FileManager.default.contentsOfDirectory(atPath: temporary)
        XCTAssertEqual(left, [], "the harness left temporary files behind", file: file, line: line)
        return report
    }

    /// The checks every conforming run must pass, with the report's problems in the message.
    static func isCheckUpdate(_ record: TaskStateRecord) -> Bool {
        record.reason == "\(Mesos_V1_TaskStatus.Reason.taskHealthCheckStatusUpdated)"
            || record.reason == "\(Mesos_V1_TaskStatus.Reason.taskCheckStatusUpdated)"
    }

    static func assertConforming(_ report: RunReport, file: StaticString = #filePath, line: UInt = #line) {
        let context = "\(report.job): \(report.problems.joined(separator: "; "))\n\(report.executorLog ?? "")"
        XCTAssertTrue(report.passed, context, file: file, line: line)
        for task in report.tasks {
            XCTAssertEqual(task.actual, task.expected, "task \(task.id): \(context)", file: file, line: line)
            XCTAssertTrue(
                task.exactlyOnce, "task \(task.id) updates not exactly-once: \(task.states)", file: file, line: line)
            // Health and check updates repeat TASK_RUNNING by design; every other state comes once.
            let executorStates = task.states.filter { $0.source == "executor" && !isCheckUpdate($0) }.map(\.state)
            XCTAssertEqual(executorStates.count, Set(executorStates).count, "task \(task.id)", file: file, line: line)
            XCTAssertTrue(
                task.states.allSatisfy(\.acknowledged), "task \(task.id) unacknowledged", file: file, line: line)
        }
        XCTAssertEqual(report.violations, [], file: file, line: line)
        XCTAssertEqual(report.leftoverProcesses, [], file: file, line: line)
        XCTAssertEqual(report.executorExit, "exited with status 0", file: file, line: line)
    }
}
