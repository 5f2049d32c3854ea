import TemporaryDirectory
import HarnessJobs
import Foundation
import Harness
import MesosProto
import Testing

/// Where the built binaries and the example job files are.
enum HarnessTestSupport {
    /// The build folder holding this test bundle (and the executor built next to it).
    static var buildDirectory: String {
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? ""
        return (executable as NSString).deletingLastPathComponent
    }

    /// The real executor binary, built next to this test bundle (the suites that run it need it built).
    static var executor: String { buildDirectory + "/spark-mesos-executor" }

    /// `Sources/Harness/Examples`.
    static var examples: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Sources/Harness/Examples").path
    }

    /// Runs `job` with the real executor in a private temporary directory, asserts that
    /// nothing is left there afterwards, and returns the report.
    static func run(_ job: Job, executor: String? = nil, sourceLocation: SourceLocation = #_sourceLocation)
        async throws -> RunReport
    {
        var options = HarnessOptions(executorPath: executor ?? Self.executor)
        // A directory of its own for the run's temporary files, so that the test can check they are all gone.
        return try await withTemporaryDirectory(prefix: "harness-tests-") { temporary in
            options.temporaryDirectory = temporary
            // Passable by other users, as /tmp is to the harness's own runs: a job's task of another
            // user must reach its directory in the sandbox.
            chmod(temporary, 0o711)
            let report = try await JobRunner.run(job, options: options)
            let left = try FileManager.default.contentsOfDirectory(atPath: temporary)
            #expect(left == [], "the harness left temporary files behind", sourceLocation: sourceLocation)
            return report
        }
    }

    /// The checks every conforming run must pass, with the report's problems in the message.
    static func isCheckUpdate(_ record: TaskStateRecord) -> Bool {
        record.reason == "\(Mesos_V1_TaskStatus.Reason.taskHealthCheckStatusUpdated)"
            || record.reason == "\(Mesos_V1_TaskStatus.Reason.taskCheckStatusUpdated)"
    }

    static func assertConforming(_ report: RunReport, sourceLocation: SourceLocation = #_sourceLocation) {
        let context = "\(report.job): \(report.problems.joined(separator: "; "))\n\(report.executorLog ?? "")"
        #expect(report.passed, "\(context)", sourceLocation: sourceLocation)
        for task in report.tasks {
            #expect(task.actual == task.expected, "task \(task.id): \(context)", sourceLocation: sourceLocation)
            #expect(
                task.exactlyOnce, "task \(task.id) updates not exactly-once: \(task.states)",
                sourceLocation: sourceLocation)
            // Health and check updates repeat TASK_RUNNING by design; every other state comes once.
            let executorStates = task.states.filter { $0.source == "executor" && !isCheckUpdate($0) }.map(\.state)
            #expect(
                executorStates.count == Set(executorStates).count, "task \(task.id)", sourceLocation: sourceLocation)
            #expect(
                task.states.allSatisfy { $0.acknowledged }, "task \(task.id) unacknowledged",
                sourceLocation: sourceLocation
            )
        }
        #expect(report.violations == [], sourceLocation: sourceLocation)
        #expect(report.leftoverProcesses == [], sourceLocation: sourceLocation)
        #expect(report.executorExit == "exited with status 0", sourceLocation: sourceLocation)
    }
}

extension Trait where Self == ConditionTrait {
    /// Skips a test that runs `program` from the build folder where it has not been built
    /// (`swift build --build-tests` builds every one of them).
    static func needsBuilt(_ program: String) -> Self {
        let path = HarnessTestSupport.buildDirectory + "/" + program
        return .enabled(
            if: FileManager.default.isExecutableFile(atPath: path),
            "\(path) is missing: build it first with `swift build --product \(program)`")
    }
}
