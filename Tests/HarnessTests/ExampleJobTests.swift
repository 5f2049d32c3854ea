import TemporaryDirectory
import HarnessJobs
import Foundation
import Harness
import MesosProto
import SystemTestLock
import Testing

/// Runs every example job file with the real executor and checks the JSON report.
@Suite(.serialized, .systemTest, .needsBuilt("spark-mesos-executor"))
struct ExampleJobTests {
    func load(_ name: String) throws -> Job {
        try JobParser.load(path: HarnessTestSupport.examples + "/" + name)
    }

    /// The report as `--report` writes it, read back, so the JSON form is what is checked.
    func roundTrip(_ report: RunReport) throws -> RunReport {
        let data = try HarnessReport(runs: [report]).json()
        let text = String(decoding: data, as: UTF8.self)
        #expect(text.contains("\"duration_ms\"") && !text.contains("\"durationMs\""), "snake_case keys")
        let decoded = try HarnessReport(json: data)
        #expect(decoded.runs.count == 1)
        return decoded.runs[0]
    }

    @Test func coarseExample() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("coarse.json")))
        HarnessTestSupport.assertConforming(report)
        #expect(report.mode == "coarse")
        #expect(report.tasks.first { $0.id == "env" }?.result == "hi there")
        #expect(report.tasks.first { $0.id == "argv" }?.result == "no shell")
        #expect(report.packageURI != nil, "a local package is served over loopback HTTP")
        #expect(report.log.calls.contains { $0.type == "subscribe" && $0.status == 200 })
    }

    @Test func fineExampleInYAMLWithJSONEncoding() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("fine.yaml")))
        HarnessTestSupport.assertConforming(report)
        #expect(report.mode == "fine")
        #expect(report.encoding == "json")
        let first = try #require(report.tasks.first { $0.id == "first" })
        let second = try #require(report.tasks.first { $0.id == "second" })
        #expect(try #require(first.endedAtMs) <= #require(second.launchedAtMs))
    }

    /// A command task's result is the first line it wrote, found where its id made a file name
    /// puts its output (`a/b` and `a b`, both `a_b` once made safe, each in a directory of its own).
    @Test func aCommandTasksResultIsItsFirstLineWhateverItsId() async throws {
        let job = try JobParser.parse(
            """
            {"tasks": [{"id": "a/b", "command": "echo slash"}, {"id": "a b", "command": "echo space"}]}
            """, file: "ids.json")
        let report = try await HarnessTestSupport.run(job)
        HarnessTestSupport.assertConforming(report)
        #expect(report.tasks.first { $0.id == "a/b" }?.result == "slash")
        #expect(report.tasks.first { $0.id == "a b" }?.result == "space")
    }

    /// A pause holds the next step back (here, the kill of a running task) and is in the report.
    @Test func pauseStepHoldsTheNextStepBack() async throws {
        let job = try JobParser.parse(
            """
            {"tasks": [{"id": "long", "command": "sleep 60", "expect": "killed"}],
             "steps": [{"launch": "long"}, {"wait": {"long": "running"}}, {"pause": 0.3}, {"kill": "long"},
                       {"wait": "all"}, {"shutdown": true}]}
            """, file: "pause.json")
        let report = try await HarnessTestSupport.run(job)
        HarnessTestSupport.assertConforming(report)
        let pause = try #require(report.log.steps.first { $0.detail == "pause 0.3 seconds" })
        let kill = try #require(report.log.steps.first { $0.detail.hasPrefix("kill long") })
        // Task.sleep sleeps at least as long as asked: a lower bound, whatever the machine's load.
        #expect(kill.atMs - pause.atMs >= 299)
        #expect(report.tasks.first { $0.id == "long" }?.actual == "TASK_KILLED")
    }

    /// Run as root (as CI runs): a job's task of another user runs as it, in its own directory,
    /// which it reaches through the harness's sandbox, made 0750 as Mesos's agent makes them.
    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func aTaskOfAnotherUserRunsInTheHarness() async throws {
        let job = try JobParser.parse(
            """
            {"tasks": [{"id": "as-nobody", "command": {"value": "id -un; ls \\"$MESOS_SANDBOX\\"; echo ok > mine",
                        "user": "nobody"}, "expect": "finished"}]}
            """, file: "user.json")
        let report = try await HarnessTestSupport.run(job)
        HarnessTestSupport.assertConforming(report)
        let task = try #require(report.tasks.first { $0.id == "as-nobody" })
        #expect(task.actual == "TASK_FINISHED", "\(task.states.last?.message ?? "")")
    }

    @Test func failuresAndKillsExample() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("failures-and-kills.json")))
        HarnessTestSupport.assertConforming(report)
        let byID = Dictionary(uniqueKeysWithValues: report.tasks.map { ($0.id, $0) })
        #expect(byID["exits-3"]?.exit == "exit 3")
        #expect(byID["segfault"]?.exit == "SIGSEGV")
        #expect(byID["stubborn"]?.exit == "SIGKILL")
        #expect(byID["empty-command"]?.states.map(\.state) == ["TASK_STARTING", "TASK_ERROR"])
        // The job file's limits reach the TaskInfo: below the request, the executor refuses them.
        #expect(byID["limit-below-request"]?.states.last?.message?.contains("TaskInfo.limits[mem]") == true)
        // The job file's user reaches CommandInfo.user: a user the machine does not have fails it.
        #expect(
            byID["no-such-user"]?.states.last?.message
                == "cannot run the task: the task's user 'no-such-user-sme' (CommandInfo.user) does not exist on this agent"
        )
        #expect(report.log.steps.filter { $0.kind == .kill }.count == 2)
    }

    @Test func agentRestartExample() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("agent-restart.json")))
        HarnessTestSupport.assertConforming(report)
        #expect(report.checkpoint)
        #expect(report.log.calls.filter { $0.type == "subscribe" && $0.status == 200 }.count == 2)
        #expect(report.log.steps.contains { $0.detail == "executor re-subscribed" })
    }

    /// Closures need the demo worker.
    @Test(.needsBuilt("demo-worker")) func closuresExample() async throws {
        let report = try await HarnessTestSupport.run(load("closures.json"))
        HarnessTestSupport.assertConforming(report)
        #expect(report.miniTasks.map(\.passed) == [true, true, true])
        #expect(report.packageDownloads > 0, "the executor fetches the package from the harness")
        // The progress closure's reports are in the report, in order, for it alone.
        let progress = try #require(report.tasks.first { $0.id == "progress" })
        #expect(progress.progressMessages ?? 0 >= 1)
        #expect(report.log.progress.map(\.sequence) == Array(1...max(1, report.log.progress.count)))
        #expect(report.log.progress.allSatisfy { $0.taskID == "progress" })
        #expect(progress.lastProgress?.message.hasPrefix("step ") == true)
    }

    /// A batch sent right after the first launch, before the executor has subscribed, waits for
    /// the subscription (an agent would drop it) and every mini-task is answered exactly once.
    @Test(.needsBuilt("demo-worker")) func miniTasksRightAfterTheFirstLaunchAreAnswered() async throws {
        let worker = HarnessTestSupport.buildDirectory + "/demo-worker"
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
        #expect(report.miniTasks.count == 200)
        #expect(report.miniTasks.allSatisfy { $0.passed }, "\(report.problems)")
    }

    /// An agent that dies as it stores the executor's first result MESSAGE, before answering it
    /// (`"restart_agent": "at_next_message"`): the executor re-subscribes and sends those results
    /// again to the agent that comes back (at least once). The run waits for them (`wait: all`
    /// counts only results in MESSAGEs the agent accepted), reports them as sent again, not as
    /// answers too many, and passes.
    @Test(.needsBuilt("demo-worker")) func resultsADyingAgentDidNotAnswerAreSentAgain() async throws {
        let worker = HarnessTestSupport.buildDirectory + "/demo-worker"
        let batch = (1...20).map { #"{ "id": "m\#($0)", "function": "echo", "payload": "\#($0)" }"# }
        let job = try JobParser.parse(
            """
            { "name": "results cut by a dying agent",
              "executor": { "mode": "coarse", "worker": "\(worker)", "checkpoint": true },
              "tasks": [ { "id": "warm", "closure": { "function": "echo", "payload": "x" } } ],
              "steps": [ { "launch": "warm" }, { "wait": { "warm": "ended" } },
                         { "restart_agent": "at_next_message" },
                         { "mini_tasks": [\(batch.joined(separator: ", "))] },
                         { "wait": "all" }, { "shutdown": true } ] }
            """, file: "cut-results.json")
        let report = try roundTrip(try await HarnessTestSupport.run(job))
        HarnessTestSupport.assertConforming(report)
        #expect(report.miniTasks.count == 20)
        #expect(report.miniTasks.allSatisfy { $0.passed }, "\(report.problems)")
        let resent = report.miniTasks.filter { $0.resent != nil }
        #expect(!resent.isEmpty, "the cut MESSAGE's results came again")
        #expect(resent.allSatisfy { $0.resent == 1 })
        #expect(report.log.steps.contains { $0.detail.hasPrefix("agent restart: died at the executor's MESSAGE") })
        #expect(report.log.calls.filter { $0.type == "subscribe" && $0.status == 200 }.count == 2)
        #expect(ReportTable.summary(report).contains("sent again after an agent restart"))
    }

    @Test func healthChecksExample() async throws {
        let report = try roundTrip(try await HarnessTestSupport.run(load("health-checks.json")))
        HarnessTestSupport.assertConforming(report)
        let byID = Dictionary(uniqueKeysWithValues: report.tasks.map { ($0.id, $0) })
        let flaky = try #require(byID["flaky-service"])
        #expect(flaky.actual == "TASK_KILLED")
        #expect(Array(flaky.states.compactMap(\.healthy).suffix(4)) == [false, false, false, false])
        #expect(flaky.states.filter { $0.healthy == false }.count == 4, "three failures, then the kill")
        #expect(
            flaky.error?.contains("COMMAND health check failed 3 consecutive times") == true, "\(flaky.error ?? "")")
        let watched = try #require(byID["watched"])
        #expect(watched.actual == "TASK_FINISHED")
        #expect(
            watched.states.compactMap(\.check).starts(with: ["exit_code=0"]), "\(watched.states.compactMap(\.check))")
        let slow = try #require(byID["too-slow"])
        #expect(slow.states.last?.reason == "\(Mesos_V1_TaskStatus.Reason.maxCompletionTimeReached)")
        let page = HTMLReport.render(HarnessReport(runs: [report]))
        #expect(page.contains("class=\"health unhealthy\""), "health changes are marked on the timeline")
        #expect(page.contains("class=\"check\""), "check results are marked on the timeline")
    }

    @Test func builtInDemoPasses() async throws {
        try await withTemporaryDirectory(prefix: "harness-tests-") { directory in
            let package = try DemoJob.makePackage(in: directory, worker: nil)
            for job in DemoJob.jobs(package: package, closures: false) {
                let report = try await HarnessTestSupport.run(job)
                HarnessTestSupport.assertConforming(report)
                #expect(Set(report.tasks.map(\.actual)) == ["TASK_FINISHED", "TASK_FAILED", "TASK_KILLED"])
                #expect(ReportTable.render(report).contains("PASSED"))
                let service = try #require(report.tasks.first { $0.id == "service" })
                #expect(service.states.last?.healthy == false, "the service was killed as unhealthy")
                #expect(service.states.filter { $0.healthy == false }.count == 4, "three failures, then the kill")
            }
        }
    }
}
