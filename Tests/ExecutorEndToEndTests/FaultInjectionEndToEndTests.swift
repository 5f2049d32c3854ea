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

/// Faults injected through the local agent and the demo worker, each with its expected outcome:
/// the executor never crashes, every task gets exactly one terminal update with a precise reason,
/// and every update reaches the agent once and is acknowledged. Nothing here waits on a clock: every
/// wait is for a state, and its timeout only bounds a failure.
@Suite(.serialized, .systemTest)
struct FaultInjectionEndToEndTests {
    /// What a task must end as: its state, reason and a part of its message.
    struct Expected: Sendable {
        var state: Mesos_V1_TaskState
        var reason: Mesos_V1_TaskStatus.Reason?
        var message: String
    }

    private static func properties(coarse: Bool, extra: [String: String] = [:]) -> [String: String] {
        [
            "spark.mesos.coarse": coarse ? "true" : "false", "spark.executor.cores": "2",
            "spark.mesos.executor.worker": ClosureEndToEndTests.demoWorker,
        ].merging(extra) { _, new in new }
    }

    private static func closure(
        _ test: ExecutorUnderTest, _ id: String, _ function: String, _ payload: String,
        environment: [String: String] = [:]
    ) -> Mesos_V1_TaskInfo {
        closure(test.agent, id, function, payload, environment: environment)
    }

    static func closure(
        _ agent: LocalAgent, _ id: String, _ function: String, _ payload: String,
        environment: [String: String] = [:]
    ) -> Mesos_V1_TaskInfo {
        var fields = [
            #""function":"\#(function)""#, #""payload":"\#(Data(payload.utf8).base64EncodedString())""#,
        ]
        if !environment.isEmpty {
            let pairs = environment.sorted { $0.key < $1.key }.map { #""\#($0.key)":"\#($0.value)""# }
            fields.append(#""environment":{\#(pairs.joined(separator: ","))}"#)
        }
        return agent.makeTask(id, data: Array("{\(fields.joined(separator: ","))}".utf8))
    }

    /// Task `index` of a mixed load: commands that finish or fail, closures that return or throw.
    static func mixedTask(_ agent: LocalAgent, _ id: String, _ index: Int)
        -> (Mesos_V1_TaskInfo, Expected)
    {
        func command(_ shell: String) -> Mesos_V1_TaskInfo {
            var task = agent.makeTask(id)
            task.command.value = shell
            return task
        }
        switch index % 4 {
        case 0:
            return (command("true"), Expected(state: .taskFinished, message: "Command exited with status 0"))
        case 1:
            return (
                command("exit 3"),
                Expected(state: .taskFailed, reason: .commandExecutorFailed, message: "Command exited with status 3")
            )
        case 2:
            return (
                closure(agent, id, "echo", id),
                Expected(state: .taskFinished, message: "closure 'echo' returned \(id.utf8.count) bytes")
            )
        default:
            return (
                closure(agent, id, "fail", "row \(index)"),
                Expected(state: .taskFailed, reason: .commandExecutorFailed, message: "threw: row \(index)")
            )
        }
    }

    /// Every task in `expected` has exactly one terminal update, as expected (or, where `lostOnRestart`,
    /// the agent's TASK_LOST for a launch cut by a restart); no task repeats a state; every update is
    /// acknowledged; the agent saw no protocol violation.
    static func assertExactlyOnce(
        _ state: LocalAgentState, _ expected: [String: Expected], lostOnRestart: Bool = false, label: String,
        sourceLocation: SourceLocation = #_sourceLocation
    ) {
        var byTask: [String: [ObservedUpdate]] = [:]
        for update in state.updates { byTask[update.status.taskID.value, default: []].append(update) }
        for (id, want) in expected.sorted(by: { $0.key < $1.key }) {
            let updates = byTask[id] ?? []
            let states = updates.map(\.status.state)
            #expect(
                Set(states).count == states.count, "\(label) \(id) repeats a state: \(states)",
                sourceLocation: sourceLocation)
            let terminal = updates.filter { $0.status.state.isTerminal }
            guard terminal.count == 1, let end = terminal.first?.status else {
                Issue.record(
                    "\(label) \(id): \(terminal.count) terminal updates: \(states)", sourceLocation: sourceLocation)
                continue
            }
            if lostOnRestart, end.source == .agent {
                #expect(end.state == .taskLost, "\(label) \(id)", sourceLocation: sourceLocation)
                #expect(end.reason == .agentRestarted, "\(label) \(id)", sourceLocation: sourceLocation)
                continue
            }
            #expect(end.state == want.state, "\(label) \(id): \(end.message)", sourceLocation: sourceLocation)
            if let reason = want.reason {
                #expect(end.reason == reason, "\(label) \(id)", sourceLocation: sourceLocation)
            }
            #expect(
                end.message.contains(want.message), "\(label) \(id): \(end.message)", sourceLocation: sourceLocation)
        }
        let unacknowledged = state.updates.filter { !$0.acknowledged && !$0.isFromAgent }
        #expect(unacknowledged.count == 0, "\(label): unacknowledged updates", sourceLocation: sourceLocation)
        #expect(Set(state.updates.map(\.uuid)).count == state.updates.count, "\(label)", sourceLocation: sourceLocation)
        #expect(state.violations.isEmpty, "\(label): \(state.violations)", sourceLocation: sourceLocation)
    }

    /// Restarts the agent at once, whatever the executor is doing; it comes back RECOVERING (UPDATE
    /// gets 503) until the executor re-subscribed — its `subscriptions`th SUBSCRIBE — then runs.
    static func restart(_ agent: LocalAgent, expectingSubscriptions subscriptions: Int, _ label: String)
        async throws
    {
        try await agent.restart(.manual)
        try await agent.comeBack()
        await agent.recoverContainerizer(window: .untilEnded)
        try await agent.waitUntil("re-subscribed after \(label)") {
            $0.subscriptions >= subscriptions && $0.executorStatus == .subscribed
        }
        await agent.endRecovery()
    }

    /// Waits until every task in `ids` is terminal at the agent and every update is acknowledged.
    static func waitForAllEnded(_ agent: LocalAgent, _ ids: [String], _ label: String) async throws
        -> LocalAgentState
    {
        try await agent.waitUntil("\(label): \(ids.count) tasks ended and acknowledged", timeout: .seconds(300)) {
            state in
            ids.allSatisfy { state.taskStates[$0]?.isTerminal == true }
                && state.updates.allSatisfy { $0.acknowledged || $0.isFromAgent }
        }
    }

    /// UPDATE answered 503 or its connection dropped, at random (a fifth each): every update still
    /// arrives exactly once, in order per task, and the tasks end as they would have anyway.
    @Test(.needsDemoWorker) func updatesAnswered503OrDroppedAtRandomAreEachDeliveredOnce() async throws {
        for encoding in WireEncoding.allCases {
            let label = "\(encoding)"
            try await ExecutorUnderTest.run(encoding: encoding, properties: Self.properties(coarse: true)) { test in
                await test.agent.injectUpdateFaults(UpdateFaults(unavailable: 0.2, dropped: 0.2, seed: 7))
                var expected: [String: Expected] = [:]
                for index in 0..<40 {
                    let (task, want) = Self.mixedTask(test.agent, "t\(index)", index)
                    expected[task.taskID.value] = want
                    try await test.agent.launch(task)
                }
                let state = try await Self.waitForAllEnded(test.agent, Array(expected.keys), label)
                let calls = state.requests.filter { $0.call?.type == .update }
                #expect(calls.contains { $0.status == 503 }, "\(label): no UPDATE was answered 503")
                #expect(calls.contains { $0.status == 0 }, "\(label): no UPDATE lost its connection")
                Self.assertExactlyOnce(state, expected, label: label)
                // Neither fault stores the update: the agent never saw one twice.
                #expect(state.updates.map(\.duplicates).reduce(0, +) == 0, "\(label)")
                for id in expected.keys {
                    let states = state.updates(forTask: id).map(\.status.state)
                    #expect(Array(states.prefix(2)) == [.taskStarting, .taskRunning], "\(label) \(id)")
                }
                await test.agent.injectUpdateFaults(nil)
                await test.agent.shutdown()
            }
        }
    }

    /// The agent restarted six times while tasks launch and run (checkpointing): every task ends
    /// exactly once — as it would have, or TASK_LOST from the agent when the restart cut its LAUNCH
    /// before the executor read it — and nothing is sent again after its acknowledgement.
    @Test(.needsDemoWorker) func theAgentRestartedRepeatedlyUnderLoadLosesAndRepeatsNothing() async throws {
        try await ExecutorUnderTest.run(
            encoding: .protobuf, checkpoint: true, properties: Self.properties(coarse: true)
        ) { test in
            let agent = test.agent
            var expected: [String: Expected] = [:]
            for round in 0..<6 {
                for index in 0..<12 {
                    let (task, want) = Self.mixedTask(test.agent, "r\(round)-\(index)", index)
                    expected[task.taskID.value] = want
                    try await agent.launch(task)
                }
                try await Self.restart(agent, expectingSubscriptions: round + 2, "restart \(round + 1)")
            }
            let state = try await Self.waitForAllEnded(agent, Array(expected.keys), "restarts")
            Self.assertExactlyOnce(state, expected, lostOnRestart: true, label: "restarts")
            #expect(state.subscriptions == 7)
            await agent.shutdown()
        }
    }

    /// The event stream cut in the middle of a record (the agent died while writing it): a lost
    /// connection, not a crash; with checkpointing the executor re-subscribes and its task carries on.
    @Test func anEventStreamCutMidRecordIsALostConnection() async throws {
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding, checkpoint: true) { test in
                test.makeFIFO("go")
                try await test.agent.launch(test.task("steady", "cat go > /dev/null"))
                try await test.waitForStates(["steady": .taskRunning])
                // A length promising 100 bytes, then 9 of them, then the connection ends.
                let injected = await test.agent.injectRawStreamBytes(Array(#"100\#n{"type":"#.utf8))
                #expect(injected)
                await test.agent.dropStream()
                try await test.agent.waitUntil("re-subscribed") { $0.subscriptions == 2 && $0.hasOpenStream }
                try await test.agent.launch(test.task("after", "exit 5"))
                try "go".write(toFile: test.path("go"), atomically: false, encoding: .utf8)
                let state = try await Self.waitForAllEnded(test.agent, ["steady", "after"], "\(encoding)")
                Self.assertExactlyOnce(
                    state,
                    [
                        "steady": Expected(state: .taskFinished, message: "Command exited with status 0"),
                        "after": Expected(
                            state: .taskFailed, reason: .commandExecutorFailed, message: "Command exited with status 5"),
                    ], label: "\(encoding)")
                await test.agent.shutdown()
            }
        }
    }

    /// A worker killed with SIGKILL in the middle of a closure: that task fails naming the worker and
    /// the signal; the other closure running beside it and later ones are unaffected.
    @Test(.needsDemoWorker) func aWorkerKilledMidTaskFailsOnlyItsTask() async throws {
        for coarse in [true, false] {
            let label = coarse ? "coarse" : "fine"
            try await ExecutorUnderTest.run(encoding: .protobuf, properties: Self.properties(coarse: coarse)) { test in
                test.makeFIFO("victim-ready")
                test.makeFIFO("bystander-ready")
                try await test.agent.launch(
                    Self.closure(
                        test, "victim", "hang", "600000", environment: ["DEMO_READY_FIFO": test.path("victim-ready")]))
                try await test.agent.launch(
                    Self.closure(
                        test, "bystander", "hang", "0", environment: ["DEMO_READY_FIFO": test.path("bystander-ready")]))
                let text = await readFIFO(test.path("victim-ready"))
                let pid = try #require(Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)), "\(text)")
                #expect(kill(pid, SIGKILL) == 0)
                // The bystander returns once it is let go, whatever happened to the victim.
                _ = await readFIFO(test.path("bystander-ready"))
                try await test.waitForStates(["victim": .taskFailed, "bystander": .taskFinished])
                try await test.agent.launch(Self.closure(test, "after", "echo", "still here"))
                let state = try await Self.waitForAllEnded(test.agent, ["victim", "bystander", "after"], label)
                Self.assertExactlyOnce(
                    state,
                    [
                        "victim": Expected(
                            state: .taskFailed, reason: .commandExecutorFailed, message: "(pid \(pid), "),
                        "bystander": Expected(state: .taskFinished, message: "closure 'hang' returned 4 bytes"),
                        "after": Expected(state: .taskFinished, message: "closure 'echo' returned 10 bytes"),
                    ], label: label)
                let victim = state.updates(forTask: "victim").last!.status.message
                #expect(victim.contains("SIGKILL"), "\(label): \(victim)")
                await test.agent.shutdown()
            }
        }
    }

    /// A worker that writes bytes that are not frames: mid-closure, that closure fails and its worker
    /// is stopped; at start-up (every worker garbles), closures fail before running with the reason,
    /// and command tasks still run.
    @Test(.needsDemoWorker) func aWorkerWritingGarbageFailsItsTasksWithTheReason() async throws {
        for coarse in [true, false] {
            let label = coarse ? "coarse" : "fine"
            try await ExecutorUnderTest.run(encoding: .json, properties: Self.properties(coarse: coarse)) { test in
                try await test.agent.launch(Self.closure(test, "garbled", "garbage", ""))
                try await test.waitForStates(["garbled": .taskFailed])
                try await test.agent.launch(Self.closure(test, "after", "echo", "fine"))
                let state = try await Self.waitForAllEnded(test.agent, ["garbled", "after"], label)
                Self.assertExactlyOnce(
                    state,
                    [
                        "garbled": Expected(
                            state: .taskFailed, reason: .commandExecutorFailed,
                            message: "sent bytes that are not RecordIO frames"),
                        "after": Expected(state: .taskFinished, message: "closure 'echo' returned 4 bytes"),
                    ], label: label)
                let garbled = state.updates(forTask: "garbled").last!.status.message
                #expect(garbled.contains("it was stopped"), "\(label): \(garbled)")
                await test.agent.shutdown()
            }
            let properties = Self.properties(coarse: coarse, extra: ["spark.executorEnv.DEMO_WORKER_MODE": "garbage"])
            try await ExecutorUnderTest.run(encoding: .protobuf, properties: properties) { test in
                try await test.agent.launch(Self.closure(test, "never", "echo", "x"))
                try await test.agent.launch(test.task("command", "true"))
                let state = try await Self.waitForAllEnded(test.agent, ["never", "command"], label)
                Self.assertExactlyOnce(
                    state,
                    [
                        "never": Expected(
                            state: .taskFailed, reason: .containerLaunchFailed,
                            message: "sent bytes that are not RecordIO frames"),
                        "command": Expected(state: .taskFinished, message: "Command exited with status 0"),
                    ], label: "\(label), every worker garbles")
                await test.agent.shutdown()
            }
        }
    }

    /// SIGTERM to the executor process while commands and closures run and others are already done:
    /// each running task ends TASK_KILLED once, naming the signal; the finished ones keep their single
    /// terminal update; the executor exits 0. The grace period is long (30 s) so that the updates are
    /// acknowledged before it ends however busy the machine is; the tasks end at SIGTERM, well before.
    @Test(.needsDemoWorker) func sigtermMidRunKillsEachRunningTaskOnceAndExitsZero() async throws {
        try await ExecutorUnderTest.withSandbox { sandbox in
            var configuration = LocalAgentConfiguration()
            configuration.useUniqueFrameworkID()
            configuration.sandboxDirectory = sandbox
            configuration.executorShutdownGracePeriod = .seconds(30)
            configuration.executorInfo.data = try JSONSerialization.data(
                withJSONObject: Self.properties(coarse: true, extra: ["spark.executor.cores": "3"]))
            try await withLocalAgent(configuration) { agent in
                let tasks: [Mesos_V1_TaskInfo] = [
                    {
                        var task = agent.makeTask("done-command"); task.command.value = "true"; return task
                    }(),
                    Self.closure(agent, "done-closure", "echo", "early"),
                    {
                        var task = agent.makeTask("sleeper"); task.command.value = "exec sleep 300"; return task
                    }(),
                    {
                        var task = agent.makeTask("parent"); task.command.value = "sleep 300 & wait"; return task
                    }(),
                    Self.closure(agent, "sleeping-closure", "sleep", "600000"),
                ]
                for task in tasks { try await agent.launch(task) }
                let launched = try await BinaryEndToEndTests.launch(agent.environment(), sandbox: sandbox)
                try await agent.waitUntil("two done, three running") { state in
                    state.taskStates["done-command"] == .taskFinished
                        && state.taskStates["done-closure"] == .taskFinished
                        && ["sleeper", "parent", "sleeping-closure"].allSatisfy {
                            state.taskStates[$0] == .taskRunning
                        }
                }
                launched.child.signal(SIGTERM)
                let termination = await launched.child.wait()
                #expect(termination == .exited(0), "\(launched.stderr)")
                let killed = Expected(state: .taskKilled, reason: .executorTerminated, message: "received SIGTERM")
                let state = await agent.state
                Self.assertExactlyOnce(
                    state,
                    [
                        "done-command": Expected(state: .taskFinished, message: "Command exited with status 0"),
                        "done-closure": Expected(state: .taskFinished, message: "closure 'echo' returned 5 bytes"),
                        "sleeper": killed, "parent": killed, "sleeping-closure": killed,
                    ], label: "SIGTERM")
            }
        }
    }
}
