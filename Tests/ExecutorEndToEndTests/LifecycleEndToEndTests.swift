import ExecutorCore
import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import ProcessSupervision
import SystemTestLock
import Testing

/// The executor runtime against the local agent, in both encodings.
@Suite(.serialized, .systemTest)
struct LifecycleEndToEndTests {
    @Test func commandTaskRunsToFinishedAndEveryUpdateIsAcknowledged() async throws {
        for encoding in WireEncoding.allCases {
            let code = try await ExecutorUnderTest.run(encoding: encoding) { test in
                try await test.agent.launch(test.task("hello", "echo hello from $MESOS_SANDBOX"))
                try await test.waitForStates(["hello": .taskFinished])
                let states = await test.states(of: "hello")
                #expect(states == [.taskStarting, .taskRunning, .taskFinished], "\(encoding)")
                let updates = await test.agent.state.updates(forTask: "hello")
                for update in updates {
                    #expect(update.status.source == .executor)
                    #expect(update.status.uuid.count == 16)
                    #expect(update.status.executorID.value == test.agent.configuration.executorID)
                    #expect(update.status.timestamp > 1_700_000_000)
                }
                let output = try String(contentsOfFile: test.path("tasks/hello/stdout"), encoding: .utf8)
                #expect(output == "hello from \(test.sandbox)\n")
                await test.agent.shutdown()
            }
            #expect(code == 0, "\(encoding)")
        }
    }

    /// As Mesos's default executor, a command task learns its container's address
    /// (`MESOS_CONTAINER_IP`): libprocess's when the agent gave one, else the address the
    /// executor reaches the agent from (loopback here).
    @Test func aCommandTaskLearnsItsContainersAddress() async throws {
        for (environment, expected) in [([:], "127.0.0.1"), (["LIBPROCESS_IP": "192.0.2.7"], "192.0.2.7")] {
            try await ExecutorUnderTest.run(encoding: .protobuf, environment: environment) { test in
                try await test.agent.launch(test.task("address", "echo $MESOS_CONTAINER_IP"))
                try await test.waitForStates(["address": .taskFinished])
                let output = try String(contentsOfFile: test.path("tasks/address/stdout"), encoding: .utf8)
                #expect(output == "\(expected)\n")
                await test.agent.shutdown()
            }
        }
    }

    @Test func theExecutorNoticesOnceABurstIsOverAndAcknowledged() async throws {
        let (idle, notice) = AsyncStream.makeStream(of: Void.self)
        try await ExecutorUnderTest.run(
            encoding: .protobuf, whenIdle: { notice.yield() }, idleSettle: .milliseconds(20)
        ) { test in
            var notices = idle.makeAsyncIterator()
            // Start-up is over: the first notice comes before any task.
            _ = await notices.next()
            let launched = await test.agent.state.updates
            #expect(launched.isEmpty)
            for burst in 0..<2 {
                // The tasks of a burst wait on a lock the test holds until all of them were launched, so
                // the burst cannot end between two launches however slowly the test runs.
                let gate = open(test.path("gate-\(burst)"), O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
                #expect(flock(gate, LOCK_EX) == 0)
                for index in 0..<3 {
                    try await test.agent.launch(test.task("b\(burst)-\(index)", "flock -s gate-\(burst) true"))
                }
                close(gate)
                _ = await notices.next()
                // Only now: every task of the burst ended and every update was acknowledged.
                let state = await test.agent.state
                #expect(
                    (0..<3).map { state.taskStates["b\(burst)-\($0)"] } == Array(repeating: .taskFinished, count: 3))
                #expect(state.updates.filter { !$0.acknowledged }.count == 0)
            }
            await test.agent.shutdown()
        }
        notice.finish()
        var remaining = 0
        for await _ in idle { remaining += 1 }
        #expect(remaining == 0, "one notice per burst")
    }

    @Test func tasksRunOneAfterAnotherLeaveNoIdleTimerBehind() async throws {
        // Each task ends and is acknowledged before the next comes, so the executor notices
        // idleness after each; a settle far longer than the test keeps any timer per notice alive.
        try await ExecutorUnderTest.run(encoding: .protobuf, whenIdle: {}, idleSettle: .seconds(3600)) { test in
            let before = await test.runtime.childTaskCount
            let count = 12
            for index in 0..<count {
                let id = "one-\(index)"
                try await test.agent.launch(test.task(id, "true"))
                try await test.agent.waitUntil("\(id) finished and acknowledged") { state in
                    state.taskStates[id] == .taskFinished && state.updates.allSatisfy(\.acknowledged)
                }
            }
            // A task's child may still be ending after its last update was acknowledged; a timer
            // per idle period would add one each.
            let after = await test.runtime.childTaskCount
            #expect(after - before < count / 2, "\(after - before) child tasks more than before \(count) tasks")
            await test.agent.shutdown()
        }
    }

    @Test func badTasksGetPreciseErrorsAndOthersCarryOn() async throws {
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding) { test in
                test.makeFIFO("go")
                try await test.agent.launch(test.task("survivor", "cat go > /dev/null; echo done"))
                try await test.agent.launch(test.task("exit3", "exit 3"))
                var missing = test.agent.makeTask("missing")
                missing.command.shell = false
                missing.command.value = "/nonexistent/bin/tool"
                try await test.agent.launch(missing)
                var empty = test.agent.makeTask("empty")
                empty.command.value = ""
                try await test.agent.launch(empty)
                try await test.waitForStates(["exit3": .taskFailed, "missing": .taskFailed, "empty": .taskError])
                let byTask = await Dictionary(
                    uniqueKeysWithValues: test.agent.state.updates.map {
                        ($0.status.taskID.value + ":" + "\($0.status.state)", $0.status)
                    })
                let exit3 = try #require(byTask["exit3:taskFailed"])
                #expect(exit3.reason == .commandExecutorFailed)
                #expect(exit3.message == "Command exited with status 3")
                let missingStatus = try #require(byTask["missing:taskFailed"])
                #expect(missingStatus.reason == .containerLaunchFailed)
                #expect(missingStatus.message.contains("/nonexistent/bin/tool"), "\(missingStatus.message)")
                #expect(try #require(byTask["empty:taskError"]).reason == .taskInvalid)
                try await test.waitForStates(["survivor": .taskRunning])
                try "go".write(toFile: test.path("go"), atomically: false, encoding: .utf8)
                try await test.waitForStates(["survivor": .taskFinished])
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }

    /// A task that ignores SIGTERM, with a child that ignores it too: the grace period ends in
    /// SIGKILL for the whole tree, and the task is KILLED.
    @Test func killEscalatesToSIGKILLForTheWholeTree() async throws {
        for encoding in WireEncoding.allCases {
            try await ExecutorUnderTest.run(encoding: encoding, capabilities: [.taskKillingState]) { test in
                test.makeFIFO("ready")
                let script = "trap '' TERM; sleep 300 & echo $! > child.pid; echo ready > ready; wait; wait"
                try await test.agent.launch(test.task("stubborn", script, grace: .seconds(30)))
                _ = await readFIFO(test.path("ready"))
                try await test.waitForStates(["stubborn": .taskRunning])
                var policy = Mesos_V1_KillPolicy()
                policy.gracePeriod.nanoseconds = Duration.milliseconds(300).nanosecondsCount
                await test.agent.kill(taskID: "stubborn", killPolicy: policy)
                try await test.waitForStates(["stubborn": .taskKilled])
                let states = await test.states(of: "stubborn")
                #expect(states == [.taskStarting, .taskRunning, .taskKilling, .taskKilled], "\(encoding)")
                let killed = await test.agent.state.updates(forTask: "stubborn").last!.status
                #expect(
                    killed.message.contains("killed by the framework (SIGKILL after the 300ms grace period)"),
                    "\(killed.message)")
                let child = Int32(
                    try String(contentsOfFile: test.path("child.pid"), encoding: .utf8)
                        .trimmingCharacters(in: .whitespacesAndNewlines))!
                #expect(await processExits(child), "child survived")
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }

    @Test func killWithoutCapabilitySendsNoKillingAndPoliteTaskEndsKilled() async throws {
        try await ExecutorUnderTest.run(encoding: .json) { test in
            test.makeFIFO("ready")
            try await test.agent.launch(test.task("polite", "echo ready > ready; exec sleep 300"))
            _ = await readFIFO(test.path("ready"))
            try await test.waitForStates(["polite": .taskRunning])
            await test.agent.kill(taskID: "polite")
            await test.agent.kill(taskID: "no-such-task")
            try await test.waitForStates(["polite": .taskKilled])
            let states = await test.states(of: "polite")
            #expect(states == [.taskStarting, .taskRunning, .taskKilled])
            await assertNoViolations(test.agent)
            await test.agent.shutdown()
        }
    }

    @Test func shutdownKillsRunningTasksAndExitsZero() async throws {
        for encoding in WireEncoding.allCases {
            let code = try await ExecutorUnderTest.run(encoding: encoding, shutdownGrace: .seconds(4)) { test in
                test.makeFIFO("a-ready")
                test.makeFIFO("b-ready")
                try await test.agent.launch(test.task("a", "echo > a-ready; exec sleep 300"))
                try await test.agent.launch(test.task("b", "trap '' TERM; echo > b-ready; sleep 300; sleep 300"))
                _ = await readFIFO(test.path("a-ready"))
                _ = await readFIFO(test.path("b-ready"))
                await test.agent.shutdown()
                try await test.waitForStates(["a": .taskKilled, "b": .taskKilled])
                let b = await test.agent.state.updates(forTask: "b").last!.status
                #expect(b.reason == .executorTerminated)
                #expect(b.message.contains("SHUTDOWN from the agent"), "\(b.message)")
            }
            #expect(code == 0, "\(encoding)")
        }
    }

    @Test func launchGroupFailureKillsTheRestOfTheGroup() async throws {
        try await ExecutorUnderTest.run(encoding: .protobuf) { test in
            test.makeFIFO("ready")
            var group = Mesos_V1_TaskGroupInfo()
            group.tasks = [
                test.task("g-long", "echo > ready; exec sleep 300"), test.task("g-fail", "cat ready; exit 1"),
            ]
            try await test.agent.launchGroup(group)
            try await test.waitForStates(["g-long": .taskKilled, "g-fail": .taskFailed])
            let long = await test.agent.state.updates(forTask: "g-long").last!.status
            #expect(long.reason == .taskGroupInvalid)
            #expect(long.message.contains("task 'g-fail' of its group ended TASK_FAILED"), "\(long.message)")
            await assertNoViolations(test.agent)
            await test.agent.shutdown()
        }
    }
}

/// Events that come before or between the tasks.
@Suite(.serialized, .systemTest)
struct ExecutorEventsEndToEndTests {
    /// An agent that already decided to shut the executor down answers SUBSCRIBE with a stream
    /// holding only SHUTDOWN: the executor exits 0 at once.
    @Test func shutdownAsTheFirstEvent() async throws {
        for encoding in WireEncoding.allCases {
            let code = try await ExecutorUnderTest.run(
                encoding: encoding, beforeSubscribe: { await $0.shutdown() }, waitForSubscription: false
            ) { test in
                try await test.agent.waitUntil("a SUBSCRIBE answered with SHUTDOWN") { state in
                    state.events.contains { $0.delivered && $0.event.type == .shutdown }
                        && state.events(.subscribed).isEmpty
                }
            }
            #expect(code == 0, "\(encoding)")
        }
    }

    @Test func heartbeatCallsAreSentWhileSubscribed() async throws {
        try await ExecutorUnderTest.run(encoding: .json, heartbeatInterval: .milliseconds(20)) { test in
            let state = try await test.agent.waitUntil("two HEARTBEAT calls") { $0.requests(.heartbeat).count >= 2 }
            #expect(state.requests(.heartbeat).allSatisfy { $0.status == 202 && $0.contentType == "application/json" })
            await test.agent.shutdown()
        }
    }

    @Test func frameworkMessageWithoutAWorkerIsAnsweredAndTheExecutorCarriesOn() async throws {
        try await ExecutorUnderTest.run(encoding: .protobuf) { test in
            await test.agent.sendMessage(Data("not a batch".utf8))
            let state = try await test.agent.waitUntil("a reply") { !$0.messages.isEmpty }
            #expect(String(decoding: state.messages[0], as: UTF8.self).isEmpty == false)
            try await test.agent.launch(test.task("after", "true"))
            try await test.waitForStates(["after": .taskFinished])
            await test.agent.shutdown()
        }
    }
}
