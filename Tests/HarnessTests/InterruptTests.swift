import TemporaryDirectory
import Foundation
import ProcessSupervision
import SystemSupport
import SystemTestLock
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Ctrl-C during a run: the harness shuts the executor down, kills what is left, removes its
/// temporary files, and exits 130.
@Suite(.serialized, .systemTest)
struct InterruptTests {
    @Test(.needsBuilt("spark-mesos-harness")) func ctrlCCleansUpEveryProcessAndTemporaryFile() async throws {
        let harness = HarnessTestSupport.buildDirectory + "/spark-mesos-harness"
        try await withTemporaryDirectory(prefix: "harness-tests-") { temporary in
            try await withTemporaryDirectory(prefix: "harness-tests-") { control in
                let ready = control + "/ready"
                mkfifo(ready, 0o644)
                // A task that says it runs, then holds on (and ignores SIGTERM, so only the harness's kill ends it).
                let job = """
                    {"name": "interrupted", "timeout": 120,
                     "tasks": [{"id": "stubborn", "command": "trap '' TERM; echo $$ > \(ready); sleep 300; sleep 300"}]}
                    """
                let jobPath = control + "/job.json"
                try job.write(toFile: jobPath, atomically: true, encoding: .utf8)

                let process = Process()
                process.executableURL = URL(fileURLWithPath: harness)
                process.arguments = [jobPath, "--plain"]
                var environment = ProcessInfo.processInfo.environment
                environment["TMPDIR"] = temporary
                process.environment = environment
                process.standardOutput = FileHandle(forWritingAtPath: "/dev/null")
                process.standardError = FileHandle(forWritingAtPath: "/dev/null")
                try process.run()

                let taskPID = Int32(await readFIFO(ready).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0
                #expect(taskPID > 0)
                process.interrupt()
                await BlockingThread.run { process.waitUntilExit() }
                #expect(process.terminationStatus == 130)
                #expect(
                    await ProcessObservation.waitForExit(of: taskPID, timeoutMilliseconds: 60_000),
                    "the task \(taskPID) outlived the harness")
                let left = (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? []
                #expect(left == [], "temporary files left behind")
            }
        }
    }

    /// Blocks (on a thread of its own, off the cooperative pool) until a task writes into the FIFO
    /// at `path` and closes it.
    private func readFIFO(_ path: String) async -> String {
        await BlockingThread.run {
            let data = FileHandle(forReadingAtPath: path)?.readDataToEndOfFile() ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
    }
}
