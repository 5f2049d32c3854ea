import Foundation
import Harness
import MesosProto
import XCTest

/// Runs every example job file with the real executor and checks the JSON report.
final class ExampleJobTests: XCTestCase {
    func load(_ name: String) throws -> Job {
        try JobParser.load(path: HarnessTestSupport.examples + "/" + name)
    }

    /// The report as `--report` writes it, read back, so the JSON form is what is checked.
    func roundTrip(_ report: RunReport) throws -> RunReport {
        let data = try HarnessReport(runs: [report]).json()
        let text = String(decoding: data, as: UTF8.self)
        XCTAssertTrue(text.contains("\"duration_ms\"") && !text.contains("\"durationMs\""), "snake_case keys")
        let decoded = try HarnessReport(json: data)
        XCTAssertEqual(decoded.runs.count, 1)
        return decoded.runs[0]
    }

    func testCoarseExample() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("coarse.json")))
        HarnessTestSupport.assertConforming(report)
        XCTAssertEqual(report.mode, "coarse")
        XCTAssertEqual(report.tasks.first { $0.id == "env" }?.result, "hi there")
        XCTAssertEqual(report.tasks.first { $0.id == "argv" }?.result, "no shell")
        XCTAssertNotNil(report.packageURI, "a local package is served over loopback HTTP")
        XCTAssertTrue(report.log.calls.contains { $0.type == "subscribe" && $0.status == 200 })
    }

    func testFineExampleInYAMLWithJSONEncoding() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("fine.yaml")))
        HarnessTestSupport.assertConforming(report)
        XCTAssertEqual(report.mode, "fine")
        XCTAssertEqual(report.encoding, "json")
        let first = try XCTUnwrap(report.tasks.first { $0.id == "first" })
        let second = try XCTUnwrap(report.tasks.first { $0.id == "second" })
        XCTAssertLessThanOrEqual(try XCTUnwrap(first.endedAtMs), try XCTUnwrap(second.launchedAtMs))
    }

    func testFailuresAndKillsExample() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("failures-and-kills.json")))
        HarnessTestSupport.assertConforming(report)
        let byID = Dictionary(uniqueKeysWithValues: report.tasks.map { ($0.id, $0) })
        XCTAssertEqual(byID["exits-3"]?.exit, "exit 3")
        XCTAssertEqual(byID["segfault"]?.exit, "SIGSEGV")
        XCTAssertEqual(byID["stubborn"]?.exit, "SIGKILL")
        XCTAssertEqual(byID["empty-command"]?.states.map(\.state), ["TASK_STARTING", "TASK_ERROR"])
        XCTAssertEqual(report.log.steps.filter { $0.kind == .kill }.count, 2)
    }

    func testAgentRestartExample() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("agent-restart.json")))
        HarnessTestSupport.assertConforming(report)
        XCTAssertTrue(report.checkpoint)
        XCTAssertEqual(report.log.calls.filter { $0.type == "subscribe" && $0.status == 200 }.count, 2)
        XCTAssertTrue(report.log.steps.contains { $0.detail == "executor re-subscribed" })
    }

    func testClosuresExample() async throws {
        let worker = HarnessTestSupport.buildDirectory + "/demo-worker"
        guard FileManager.default.isExecutableFile(atPath: worker) else {
            throw XCTSkip("closures need the demo worker (branch worker): \(worker) is not built yet")
        }
        let report = try await HarnessTestSupport.run(load("closures.json"))
        HarnessTestSupport.assertConforming(report)
        XCTAssertEqual(report.miniTasks.map(\.passed), [true, true, true])
        XCTAssertGreaterThan(report.packageDownloads, 0, "the executor fetches the package from the harness")
        // The progress closure's reports are in the report, in order, for it alone.
        let progress = try XCTUnwrap(report.tasks.first { $0.id == "progress" })
        XCTAssertGreaterThanOrEqual(progress.progressMessages ?? 0, 1)
        XCTAssertEqual(report.log.progress.map(\.sequence), Array(1...max(1, report.log.progress.count)))
        XCTAssertTrue(report.log.progress.allSatisfy { $0.taskID == "progress" })
        XCTAssertTrue(progress.lastProgress?.message.hasPrefix("step ") == true)
    }

    /// A batch sent right after the first launch, before the executor has subscribed, waits for
    /// the subscription (an agent would drop it) and every mini-task is answered exactly once.
    func testMiniTasksRightAfterTheFirstLaunchAreAnswered() async throws {
        let worker = HarnessTestSupport.buildDirectory + "/demo-worker"
        guard FileManager.default.isExecutableFile(atPath: worker) else {
            throw XCTSkip("mini-tasks need the demo worker: \(worker) is not built yet")
        }
        let batch = (1...200).map { #"{ "id": "m\#($0)", "function": "echo", "payload": "\#($0)" }"# }
        let job = try JobParser.parse(
            """
            { "name": "early mini-tasks", "executor": { "mode": "coarse", "worker": "\(worker)" },
              "tasks": [ { "id": "warm", "closure": { "function": "echo", "payload": "x" } } ],
              "steps": [ { "launch": "warm" }, { "mini_tasks": [\(batch.joined(separator: ", "))] },
                         { "wait": "all" }, { "shutdown": true } ] }
            """, file: "early-mini-tasks.json")
        let report = try await HarnessTestSupport.run(job)
        HarnessTestSupport.assertConforming(report)
        XCTAssertEqual(report.miniTasks.count, 200)
        XCTAssertTrue(report.miniTasks.allSatisfy(\.passed), "\(report.problems)")
    }

    func testHealthChecksExample() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("health-checks.json")))
        HarnessTestSupport.assertConforming(report)
        let byID = Dictionary(uniqueKeysWithValues: report.tasks.map { ($0.id, $0) })
        let flaky = try XCTUnwrap(byID["flaky-service"])
        XCTAssertEqual(flaky.actual, "TASK_KILLED")
        XCTAssertEqual(Array(flaky.states.compactMap(\.healthy).suffix(4)), [false, false, false, false])
        XCTAssertEqual(flaky.states.filter { $0.healthy == false }.count, 4, "three failures, then the kill")
        XCTAssertTrue(
            flaky.error?.contains("COMMAND health check failed 3 consecutive times") == true, "\(flaky.error ?? "")")
        let watched = try XCTUnwrap(byID["watched"])
        XCTAssertEqual(watched.actual, "TASK_FINISHED")
        XCTAssertTrue(
            watched.states.compactMap(\.check).starts(with: ["exit_code=0"]), "\(watched.states.compactMap(\.check))")
        let slow = try XCTUnwrap(byID["too-slow"])
        XCTAssertEqual(slow.states.last?.reason, "\(Mesos_V1_TaskStatus.Reason.maxCompletionTimeReached)")
        let page = HTMLReport.render(HarnessReport(runs: [report]))
        XCTAssertTrue(page.contains("class=\"health unhealthy\""), "health changes are marked on the timeline")
        XCTAssertTrue(page.contains("class=\"check\""), "check results are marked on the timeline")
    }

    func testBuiltInDemoPasses() async throws {
        let directory = try HarnessTestSupport.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let package = try DemoJob.makePackage(in: directory, worker: nil)
        for job in DemoJob.jobs(package: package, closures: false) {
            let report = try await HarnessTestSupport.run(job)
            HarnessTestSupport.assertConforming(report)
            XCTAssertEqual(Set(report.tasks.map(\.actual)), ["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED"])
            XCTAssertTrue(ReportTable.render(report).contains("PASSED"))
            let service = try XCTUnwrap(report.tasks.first { $0.id == "service" })
            XCTAssertEqual(service.states.last?.healthy, false, "the service was killed as unhealthy")
            XCTAssertEqual(service.states.filter { $0.healthy == false }.count, 4, "three failures, then the kill")
        }
    }
}
