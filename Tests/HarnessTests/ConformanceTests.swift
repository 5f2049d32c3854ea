import TemporaryDirectory
import HarnessJobs
import Foundation
import Harness
import SystemTestLock
import Testing

/// `--executor`: another executor binary under the harness; a broken one is reported, not hidden.
@Suite(.serialized, .systemTest)
struct ConformanceTests {
    @Test func executorThatExitsAtOnceFailsTheRunAndLeavesNothing() async throws {
        try await withTemporaryDirectory(prefix: "harness-tests-") { directory in
            let script = directory + "/broken-executor"
            try Data("#!/bin/sh\necho 'broken executor: giving up' >&2\nexit 3\n".utf8)
                .write(to: URL(fileURLWithPath: script))
            #expect(chmod(script, 0o755) == 0)
            let job = Job(
                name: "broken", source: "test", tasks: [JobTask(id: "t", kind: .command(CommandSpec(value: "true")))])
            let report = try await HarnessTestSupport.run(job, executor: script)
            #expect(!report.passed)
            #expect(report.executorExit == "exited with status 3")
            #expect(report.tasks.first?.actual == "TASK_LOST")
            #expect(report.problems.contains { $0.contains("before the harness sent SHUTDOWN") }, "\(report.problems)")
            #expect(report.executorLog?.contains("broken executor: giving up") == true)
        }
    }

    @Test func leftoverProcessesAreKilledAndReported() async throws {
        // An executor that leaves a process of its own session behind when it exits; the harness must
        // find it, kill it and fail the run. (This executor kills everything its tasks start.)
        try await withTemporaryDirectory(prefix: "harness-tests-") { directory in
            let script = directory + "/leaky-executor"
            let body =
                "#!/bin/sh\nmkfifo escaped\nsetsid sh -c 'echo > escaped; exec sleep 300' &\nread x < escaped\nexit 3\n"
            try Data(body.utf8).write(to: URL(fileURLWithPath: script))
            #expect(chmod(script, 0o755) == 0)
            let job = Job(
                name: "escapee", source: "test", tasks: [JobTask(id: "t", kind: .command(CommandSpec(value: "true")))])
            let report = try await HarnessTestSupport.run(job, executor: script)
            #expect(!report.leftoverProcesses.isEmpty, "\(report.problems)")
            #expect(!report.passed)
            let pids = report.leftoverProcesses.compactMap { Int32($0.split(separator: " ")[1]) }
            #expect(!pids.isEmpty)
            for pid in pids {
                #expect(kill(pid, 0) != 0 || isZombie(pid), "pid \(pid) still running after the run")
            }
        }
    }

    func isZombie(_ pid: Int32) -> Bool {
        ((try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? "").contains(") Z ")
    }
}
