import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import ProcessSupervision
import SystemTestLock
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The soak (`make soak`, out of the default run): the real executor binary, once per mode, runs
/// a mixed load of command tasks and closures through the local agent, with the agent restarted
/// every `restartEvery` tasks, and then (coarse mode) mini-task batches. It asserts that every
/// task ends exactly once as it should (or TASK_LOST from the agent when a restart cut its LAUNCH),
/// that every mini-task comes back exactly once, and that the executor's anonymous memory at the
/// end is within `SME_SOAK_MARGIN_KIB` (default 4096) of what it was after the warm-up.
///
/// `SME_SOAK=1` runs it; `SME_SOAK_TASKS` (default 10000, split between the modes) and
/// `SME_SOAK_MINI_TASKS` (default 100000) size it.
///
/// Its name is what `make soak` filters on (`--filter SoakTests`).
@Suite(
    .serialized, .systemTest,
    // Minutes of load: out of `make test`, run by `make soak`.
    .enabled(if: ProcessInfo.processInfo.environment["SME_SOAK"] != nil, "the soak runs with SME_SOAK=1 (make soak)"),
    .needsDemoWorker)
struct SoakTests {
    private static let environment = ProcessInfo.processInfo.environment
    private static func number(_ name: String, _ fallback: Int) -> Int {
        environment[name].flatMap(Int.init) ?? fallback
    }

    /// The executor's memory from /proc: resident and anonymous, in KiB.
    struct Memory: CustomStringConvertible {
        var residentKiB: Int
        var anonymousKiB: Int

        init(pid: Int32) {
            let text = (try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8)) ?? ""
            func field(_ name: String) -> Int {
                let line = text.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
                return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
            }
            residentKiB = field("Rss")
            anonymousKiB = field("Anonymous")
        }

        var description: String { "RSS \(residentKiB) KiB, anonymous \(anonymousKiB) KiB" }
    }

    @Test func soak() async throws {
        let tasks = Self.number("SME_SOAK_TASKS", 10_000)
        let minis = Self.number("SME_SOAK_MINI_TASKS", 100_000)
        let margin = Self.number("SME_SOAK_MARGIN_KIB", 4096)
        let modes = (Self.environment["SME_SOAK_MODES"] ?? "coarse,fine").split(separator: ",")
        for coarse in [true, false] where modes.contains(coarse ? "coarse" : "fine") {
            try await soak(
                coarse: coarse, tasks: coarse ? tasks - tasks / 2 : tasks / 2, minis: coarse ? minis : 0,
                marginKiB: margin)
        }
    }

    private func soak(coarse: Bool, tasks total: Int, minis: Int, marginKiB: Int) async throws {
        let label = coarse ? "coarse" : "fine"
        let chunk = 50
        let restartEvery = 1000
        let warmUp = min(1000, total / 2)
        try await ExecutorUnderTest.withSandbox { sandbox in
            var configuration = LocalAgentConfiguration()
            configuration.useUniqueFrameworkID()
            configuration.sandboxDirectory = sandbox
            configuration.frameworkInfo.checkpoint = true
            configuration.executorInfo.data = try JSONSerialization.data(withJSONObject: [
                "spark.mesos.coarse": coarse ? "true" : "false", "spark.executor.cores": "2",
                "spark.mesos.executor.worker": ClosureEndToEndTests.demoWorker,
            ])
            let clock = ContinuousClock()
            let started = clock.now
            try await withLocalAgent(configuration) { agent in
                // SME_SOAK_EXECUTOR: a wrapper to run it under (a heap profiler, say); it gets the executor's
                // path as its first argument.
                let wrapper = Self.environment["SME_SOAK_EXECUTOR"]
                let executor = try await BinaryEndToEndTests.launch(
                    agent.environment(), sandbox: sandbox,
                    arguments: wrapper == nil ? [] : [BinaryEndToEndTests.executable],
                    executable: wrapper ?? BinaryEndToEndTests.executable)
                let pid = executor.child.pid
                try await agent.waitUntil("\(label): subscribed") { $0.executorStatus == .subscribed }
                var expected: [String: FaultInjectionEndToEndTests.Expected] = [:]
                var warm: Memory?
                var trace: [Int] = []
                var restarts = 0
                for first in stride(from: 0, to: total, by: chunk) {
                    var launched: [String] = []
                    for index in first..<min(first + chunk, total) {
                        let (task, want) = Self.mixedTask(agent, "\(label)-\(index)", index)
                        expected[task.taskID.value] = want
                        launched.append(task.taskID.value)
                        try await agent.launch(task)
                    }
                    if first > 0, first % restartEvery == 0 {
                        trace.append(Memory(pid: pid).anonymousKiB)
                        restarts += 1
                        try await FaultInjectionEndToEndTests.restart(
                            agent, expectingSubscriptions: restarts + 1, "\(label) restart \(restarts)")
                    }
                    let ids = launched
                    try await agent.waitUntil("\(label): tasks \(first)…", timeout: .seconds(300)) { state in
                        ids.allSatisfy { state.taskStates[$0]?.isTerminal == true }
                    }
                    if warm == nil, first + chunk >= warmUp {
                        warm = Memory(pid: pid)
                    }
                }
                let tasksDone = clock.now
                var miniResults = 0
                var miniIDs = Set<String>()
                var wrong: [String] = []
                let batch = 1000
                var seenMessages = await agent.state.messages.count
                for first in stride(from: 0, to: minis, by: batch) {
                    let count = min(batch, minis - first)
                    let entries = (first..<first + count).map { index in
                        #"{"id":"m\#(index)","function":"echo","payload":"\#(Data("v\(index)".utf8).base64EncodedString())"}"#
                    }
                    await agent.sendMessage(Data(#"{"tasks":[\#(entries.joined(separator: ","))]}"#.utf8))
                    var received = 0
                    // This batch's messages that held no result (for the report of a batch that never ends).
                    var resultless: [Data] = []
                    while received < count {
                        let seen = seenMessages
                        let state: LocalAgentState
                        do {
                            state = try await agent.waitUntil(
                                "\(label): mini-tasks \(first)…", timeout: .seconds(300)
                            ) {
                                $0.messages.count > seen
                            }
                        } catch {
                            let missing = (first..<first + count).map { "m\($0)" }.filter { !miniIDs.contains($0) }
                            let shown = resultless.prefix(3).map { String(decoding: $0.prefix(200), as: UTF8.self) }
                            // More messages held than the waits saw would mean a wake-up was missed.
                            let held = await agent.state.messages.count
                            let report: String =
                                "\(label): batch \(first): \(received) of \(count) results; \(missing.count) ids missing "
                                + "(\(missing.prefix(10).joined(separator: ", "))); \(resultless.count) messages without "
                                + "results: \(shown); the agent holds \(held) executor messages, the waits saw \(seen)"
                            Issue.record(Comment(rawValue: report))
                            throw error
                        }
                        let messages = Array(state.messages[seen...])
                        let results = ClosureEndToEndTests.results(messages)
                        resultless += messages.filter { ClosureEndToEndTests.results([$0]).isEmpty }
                        seenMessages = state.messages.count
                        received += results.count
                        miniResults += results.count
                        for result in results {
                            if !miniIDs.insert(result.id).inserted { wrong.append("\(result.id) twice") }
                            if result.state != "FINISHED" || result.data != "v" + result.id.dropFirst() {
                                wrong.append("\(result.id): \(result.state) \(result.data) \(result.error)")
                            }
                        }
                    }
                    // Restarts between batches only: results come back as executor MESSAGEs, which have
                    // no uuid; one whose answer a restart cut is sent again (at least once, as in Mesos),
                    // and a framework MESSAGE sent while the executor is away is lost. A MESSAGE the
                    // agent has handled may not be answered yet (the test sees it first), so before a
                    // restart a task's update, which follows the MESSAGE on the executor's calls
                    // connection and is handled only once the MESSAGE is answered, shows that it was.
                    if first > 0, first % (batch * 25) == 0 {
                        let (probe, want) = Self.mixedTask(agent, "\(label)-probe-\(first)", 0)
                        expected[probe.taskID.value] = want
                        try await agent.launch(probe)
                        try await agent.waitUntil("\(label): probe \(first)") {
                            $0.taskStates[probe.taskID.value]?.isTerminal == true
                        }
                        restarts += 1
                        try await FaultInjectionEndToEndTests.restart(
                            agent, expectingSubscriptions: restarts + 1, "\(label) restart \(restarts)")
                    }
                }
                let end = Memory(pid: pid)
                let state = try await agent.waitUntil("\(label): every update acknowledged", timeout: .seconds(300)) {
                    $0.updates.allSatisfy { $0.acknowledged || $0.isFromAgent }
                }
                FaultInjectionEndToEndTests.assertExactlyOnce(state, expected, lostOnRestart: true, label: label)
                #expect(miniResults == minis, "\(label)")
                #expect(miniIDs.count == minis, "\(label)")
                #expect(wrong.prefix(10) == [], "\(label)")
                let lost = state.updates.filter { $0.isFromAgent && $0.status.state.isTerminal }.count
                let warmed = try #require(warm)
                print(
                    "soak \(label): \(total) tasks (\(lost) lost to restarts) in \(tasksDone - started), \(minis) mini-tasks "
                        + "in \(clock.now - tasksDone), \(restarts) agent restarts; executor after \(warmUp) tasks: "
                        + "\(warmed); at the end: \(end); growth \(end.anonymousKiB - warmed.anonymousKiB) KiB anonymous; "
                        + "anonymous KiB every \(restartEvery) tasks: \(trace) (pid \(pid))")
                #expect(
                    end.anonymousKiB - warmed.anonymousKiB <= marginKiB,
                    "\(label): anonymous memory grew from \(warmed) to \(end)")
                await agent.shutdown()
                let termination = await executor.child.wait()
                #expect(termination == .exited(0), "\(executor.stderr)")
            }
        }
    }

    private static func mixedTask(_ agent: LocalAgent, _ id: String, _ index: Int)
        -> (Mesos_V1_TaskInfo, FaultInjectionEndToEndTests.Expected)
    {
        FaultInjectionEndToEndTests.mixedTask(agent, id, index)
    }
}
