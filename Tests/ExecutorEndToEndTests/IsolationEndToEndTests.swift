import Foundation
import Isolation
import LocalAgent
import MesosCodec
import MesosProto
import ProcessSupervision
import SystemSupport
import SystemTestLock
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Tasks and workers in cgroups of their own, against the machine's real hierarchies: every process
/// gets the kill's grace period, nothing escapes, memory limits end tasks with their own reason,
/// CPU limits throttle, usage is reported, and no cgroup is left behind. Skipped, saying why, where
/// the machine has no writable cgroup hierarchy (they need root).
@Suite(.serialized, .systemTest, .needsCgroups)
struct IsolationEndToEndTests {
    /// The suite runs where cgroups are usable (``ExecutorUnderTest/cgroupsUsable``): so must the executor's.
    private func requireCgroups(_ test: ExecutorUnderTest) throws {
        try #require(test.isolation != nil, "the executor under test found no usable cgroups (see the printed reason)")
    }

    private func properties(coarse: Bool) -> [String: String] {
        [
            "spark.mesos.coarse": coarse ? "true" : "false", "spark.executor.cores": "2",
            "spark.mesos.executor.worker": ClosureEndToEndTests.demoWorker,
        ]
    }

    private static func scalar(_ name: String, _ value: Double) -> Mesos_V1_Resource {
        var resource = Mesos_V1_Resource()
        resource.name = name
        resource.type = .scalar
        resource.scalar.value = value
        return resource
    }

    /// An amount of `TaskInfo.limits`.
    private static func limit(_ value: Double) -> Mesos_V1_Value.Scalar {
        var scalar = Mesos_V1_Value.Scalar()
        scalar.value = value
        return scalar
    }

    private func closure(_ test: ExecutorUnderTest, _ id: String, _ function: String, _ payload: String)
        -> Mesos_V1_TaskInfo
    {
        let base64 = Data(payload.utf8).base64EncodedString()
        return test.agent.makeTask(id, data: Array(#"{"function":"\#(function)","payload":"\#(base64)"}"#.utf8))
    }

    private func label(_ status: Mesos_V1_TaskStatus, _ key: String) -> String? {
        status.labels.labels.first { $0.key == key }?.value
    }

    /// Polls `condition` until it holds (true) or a minute has passed (false): the bound only
    /// bounds a failure.
    private func waitUntil(_ condition: () -> Bool) async -> Bool {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(20))
        }
        return true
    }

    /// Subdirectories left in the executor's cgroups (tasks, workers, pools still there) once the
    /// spare task cgroups are removed: a task cgroup given back is removed or kept as an empty spare,
    /// and a spare with a process inside could not be removed.
    private func leftoverCgroups(_ test: ExecutorUnderTest) -> [String] {
        test.isolation?.removeSpares()
        return (test.isolation?.directories ?? []).flatMap { directory in
            ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { name in
                var isDirectory: ObjCBool = false
                return FileManager.default.fileExists(atPath: directory + "/" + name, isDirectory: &isDirectory)
                    && isDirectory.boolValue
            }.map { directory + "/" + $0 }
        }
    }

    /// The issue's reproduction, in both modes: `sh` traps TERM, cleans up and exits; and the shape
    /// of Spark's command, whose top `sh` dies on TERM at once while the process under it (the JVM)
    /// still needs its grace period to run its shutdown hooks.
    @Test func aKilledTaskGivesEveryProcessItsGracePeriod() async throws {
        let trapping =
            "trap 'echo got TERM >&2; sleep 1; echo cleaned up >&2; exit 0' TERM; echo > ready; "
            + "while :; do sleep 0.1; done"
        let underASh =
            "sh -c \"trap 'sleep 1; echo cleaned up >&2; exit 0' TERM; echo > ready; "
            + "while :; do sleep 0.1; done\" & wait"
        for coarse in [true, false] {
            for (name, script) in [("trap", trapping), ("jvm-like", underASh)] {
                try await ExecutorUnderTest.run(encoding: .protobuf, properties: properties(coarse: coarse)) { test in
                    try self.requireCgroups(test)
                    test.makeFIFO("ready")
                    // A grace period no loaded machine runs out of: the task must end well before it.
                    try await test.agent.launch(test.task(name, script, grace: .seconds(120)))
                    _ = await readFIFO(test.path("ready"))
                    try await test.waitForStates([name: .taskRunning])
                    await test.agent.kill(taskID: name)
                    try await test.waitForStates([name: .taskKilled])
                    let stderr = try String(contentsOfFile: test.path("tasks/\(name)/stderr"), encoding: .utf8)
                    #expect(stderr.contains("cleaned up"), "\(name), coarse \(coarse): \(stderr)")
                    let last = await test.agent.state.updates(forTask: name).last!.status
                    #expect(!last.message.contains("SIGKILL after"), "\(last.message)")
                    await test.agent.shutdown()
                }
            }
        }
    }

    /// A setsid'd, double-forked grandchild dies with its task: after a normal exit, a KILL and a SHUTDOWN.
    @Test func nothingEscapesATask() async throws {
        let escape = "(setsid sleep 300 & echo $! > escaped-$ID.pid) ; echo > ready-$ID"
        for ending in ["exit", "kill", "shutdown"] {
            try await ExecutorUnderTest.run(encoding: .json) { test in
                try self.requireCgroups(test)
                test.makeFIFO("ready-\(ending)")
                let tail = ending == "exit" ? "; true" : "; exec sleep 300"
                try await test.agent.launch(
                    test.task(ending, "ID=\(ending); " + escape + tail, grace: .seconds(60)))
                _ = await readFIFO(test.path("ready-\(ending)"))
                switch ending {
                case "exit": try await test.waitForStates([ending: .taskFinished])
                case "kill":
                    await test.agent.kill(taskID: ending)
                    try await test.waitForStates([ending: .taskKilled])
                default:
                    await test.agent.shutdown()
                    try await test.waitForStates([ending: .taskKilled])
                }
                let pid = Int32(
                    try String(contentsOfFile: test.path("escaped-\(ending).pid"), encoding: .utf8)
                        .trimmingCharacters(in: .whitespacesAndNewlines))!
                #expect(await processExits(pid), "the setsid'd sleep \(pid) outlived its task (\(ending))")
                #expect(self.leftoverCgroups(test) == [], "\(ending)")
                if ending != "shutdown" { await test.agent.shutdown() }
            }
        }
    }

    /// A closure that allocates past its limit ends TASK_FAILED with REASON_CONTAINER_LIMITATION_MEMORY
    /// and the limitation; its sibling finishes and the executor carries on (fine: the task's own
    /// limit; coarse: the memory the workers share).
    @Test(.needsDemoWorker) func aClosurePastItsMemoryLimitFailsWithTheLimitationAndTheRestCarryOn() async throws {
        for coarse in [false, true] {
            let adjust: @Sendable (inout LocalAgentConfiguration) -> Void = { configuration in
                // Coarse workers share the executor's memory.
                if coarse { configuration.executorInfo.resources = [Self.scalar("mem", 96)] }
            }
            try await ExecutorUnderTest.run(encoding: .protobuf, properties: properties(coarse: coarse), adjust: adjust)
            { test in
                try self.requireCgroups(test)
                var hog = self.closure(test, "hog", "allocate", "1024")
                hog.resources = [Self.scalar("mem", 64), Self.scalar("cpus", 0.5)]
                var sibling = self.closure(test, "sibling", "echo", "still here")
                sibling.resources = [Self.scalar("mem", 64)]
                try await test.agent.launch(hog)
                try await test.agent.launch(sibling)
                try await test.waitForStates(["hog": .taskFailed, "sibling": .taskFinished])
                let failed = await test.agent.state.updates(forTask: "hog").last!.status
                let limit = coarse ? 96 : 64
                #expect(failed.reason == .containerLimitationMemory, "\(failed.message)")
                #expect(failed.message.contains("memory limit \(limit) MiB reached (peak "), "\(failed.message)")
                #expect(failed.message.contains("killed by the kernel's OOM killer"), "\(failed.message)")
                #expect(failed.limitation.resources.map(\.name) == ["mem"])
                #expect(failed.limitation.resources.first?.scalar.value ?? 0 > 0)
                #expect(self.label(failed, "limit.memory_bytes") == "\(limit * 1_048_576)")
                let finished = await test.agent.state.updates(forTask: "sibling").last!.status
                #expect(String(decoding: finished.data, as: UTF8.self) == "still here")
                // The executor (and in coarse mode a replaced worker) serve the next closure.
                try await test.agent.launch(self.closure(test, "after", "echo", "ok"))
                try await test.waitForStates(["after": .taskFinished])
                await assertNoViolations(test.agent)
                await test.agent.shutdown()
            }
        }
    }

    /// A fine-mode closure that may burst above its mem gets the same `oom_score_adj` as a command
    /// task, whether its worker was forked by the fork server or spawned; one that may not keeps
    /// the executor's.
    @Test(.needsDemoWorker) func aBurstingClosuresWorkerGetsMesossOOMScore() async throws {
        try await ExecutorUnderTest.run(encoding: .protobuf, properties: properties(coarse: false)) { test in
            try self.requireCgroups(test)
            var bursting = self.closure(test, "bursting", "process", "")
            bursting.resources = [Self.scalar("mem", 32)]
            bursting.limits = ["mem": Self.limit(96)]
            var plain = self.closure(test, "plain", "process", "")
            plain.resources = [Self.scalar("mem", 32)]
            try await test.agent.launch(bursting)
            try await test.agent.launch(plain)
            try await test.waitForStates(["bursting": .taskFinished, "plain": .taskFinished])
            func oom(_ id: String) async -> String? {
                let data = await test.agent.state.updates(forTask: id).last?.status.data ?? Data()
                return String(decoding: data, as: UTF8.self).split(separator: " ").first { $0.hasPrefix("oom=") }
                    .map { String($0.dropFirst(4)) }
            }
            let machine = Double(sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)))
            #expect(await oom("bursting") == "\(1000 - Int(1000 * Double(32 << 20) / machine))")
            let own = try String(contentsOfFile: "/proc/self/oom_score_adj", encoding: .utf8)
            #expect(await oom("plain") == own.trimmingCharacters(in: .whitespacesAndNewlines))
            await assertNoViolations(test.agent)
            await test.agent.shutdown()
        }
    }

    /// A command task past its memory limit: the same reason, limitation and message.
    @Test func aCommandPastItsMemoryLimitFailsWithTheLimitation() async throws {
        try await ExecutorUnderTest.run(encoding: .json) { test in
            try self.requireCgroups(test)
            var hog = test.task("hog", "python3 -c 'x = b\"x\" * (1 << 30)'")
            hog.resources = [Self.scalar("mem", 32)]
            try await test.agent.launch(hog)
            try await test.waitForStates(["hog": .taskFailed])
            let failed = await test.agent.state.updates(forTask: "hog").last!.status
            #expect(failed.reason == .containerLimitationMemory, "\(failed.message)")
            #expect(failed.message.hasPrefix("memory limit 32 MiB reached (peak "), "\(failed.message)")
            #expect(failed.limitation.resources.first?.name == "mem")
            await test.agent.shutdown()
        }
    }

    /// With hard CPU limits on, a busy loop held to 0.1 cpus is throttled, and its terminal update
    /// says how often; every terminal update carries the usage labels.
    @Test func aCPULimitedBusyLoopIsThrottledAndUsageIsReported() async throws {
        try await ExecutorUnderTest.run(encoding: .protobuf, hardCPULimits: true) { test in
            try self.requireCgroups(test)
            var busy = test.task("busy", "i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
            busy.resources = [Self.scalar("cpus", 0.1), Self.scalar("mem", 64)]
            try await test.agent.launch(busy)
            try await test.waitForStates(["busy": .taskFinished])
            let status = await test.agent.state.updates(forTask: "busy").last!.status
            #expect(Int(self.label(status, "usage.cpu_throttled_periods") ?? "0") ?? 0 > 0, "\(status.labels)")
            #expect(Double(self.label(status, "usage.cpu_user_seconds") ?? "0") ?? 0 > 0)
            #expect(Int(self.label(status, "usage.peak_memory_bytes") ?? "0") ?? 0 > 0)
            #expect(self.label(status, "usage.source") == "cgroup")
            #expect(self.label(status, "limit.memory_bytes") == "\(64 * 1_048_576)")
            await test.agent.shutdown()
        }
    }

    /// A task's own limits (`TaskInfo.limits`) above its resources, as Mesos applies them: the
    /// memory limit is the `mem` limit, a `cpus` limit caps CPU time even with CFS quotas off, an
    /// infinite limit sets none, and limits the Mesos master would refuse end the task TASK_ERROR.
    @Test func aTasksOwnLimitsAreItsCgroupsLimits() async throws {
        try await ExecutorUnderTest.run(encoding: .protobuf) { test in
            try self.requireCgroups(test)
            var bursting = test.task(
                "bursting",
                "cat /proc/self/oom_score_adj > bursting-oom; i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done")
            bursting.resources = [Self.scalar("cpus", 0.05), Self.scalar("mem", 32)]
            bursting.limits = ["mem": Self.limit(96), "cpus": Self.limit(0.1)]
            var unlimited = test.task("unlimited", "cat /proc/self/oom_score_adj > unlimited-oom")
            unlimited.resources = [Self.scalar("mem", 32)]
            unlimited.limits = ["mem": Self.limit(.infinity)]
            var plain = test.task("plain", "cat /proc/self/oom_score_adj > plain-oom")
            plain.resources = [Self.scalar("mem", 32)]
            var invalid = test.task("invalid", "touch ran")
            invalid.resources = [Self.scalar("mem", 64)]
            invalid.limits = ["mem": Self.limit(48)]
            for task in [bursting, unlimited, plain, invalid] { try await test.agent.launch(task) }
            try await test.waitForStates([
                "bursting": .taskFinished, "unlimited": .taskFinished, "plain": .taskFinished, "invalid": .taskError,
            ])
            let status = await test.agent.state.updates(forTask: "bursting").last!.status
            #expect(self.label(status, "limit.memory_bytes") == "\(96 * 1_048_576)", "\(status.labels)")
            #expect(Int(self.label(status, "usage.cpu_throttled_periods") ?? "0") ?? 0 > 0, "\(status.labels)")
            let free = await test.agent.state.updates(forTask: "unlimited").last!.status
            #expect(self.label(free, "limit.memory_bytes") == nil, "\(free.labels)")
            // Tasks that may burst are the kernel's first choice when the machine runs out of memory,
            // as Mesos ranks them: 1000 - 1000 x their mem / the machine's memory.
            let machine = Double(sysconf(Int32(_SC_PHYS_PAGES)) * sysconf(Int32(_SC_PAGESIZE)))
            let expected = "\(1000 - Int(1000 * Double(32 << 20) / machine))\n"
            #expect(try String(contentsOfFile: test.path("bursting-oom"), encoding: .utf8) == expected)
            #expect(try String(contentsOfFile: test.path("unlimited-oom"), encoding: .utf8) == expected)
            let own = try String(contentsOfFile: "/proc/self/oom_score_adj", encoding: .utf8)
            #expect(try String(contentsOfFile: test.path("plain-oom"), encoding: .utf8) == own)
            let refused = await test.agent.state.updates(forTask: "invalid").last!.status
            #expect(refused.reason == .taskInvalid)
            #expect(
                refused.message.contains(
                    "TaskInfo.limits[mem]='48.0' is malformed: expected a positive amount at "
                        + "least the task's mem (64.0)"), "\(refused.message)")
            #expect(!FileManager.default.fileExists(atPath: test.path("ran")))
            await test.agent.shutdown()
        }
    }

    /// A COMMAND health check runs inside its task's cgroup, as Mesos runs checks inside the task's
    /// container (its memory and CPU count against the task's limits).
    @Test func aCommandHealthCheckRunsInItsTasksCgroup() async throws {
        try await ExecutorUnderTest.run(encoding: .protobuf) { test in
            try self.requireCgroups(test)
            // Each file appears whole (written aside, then renamed): the check passes only once the
            // task's file is there, and a check running while the test reads never shows it half written.
            var task = test.task(
                "checked",
                "cat /proc/self/cgroup > task-cgroup.tmp && mv task-cgroup.tmp task-cgroup.txt; exec sleep 300",
                grace: .seconds(60))
            task.healthCheck.type = .command
            task.healthCheck.command.value =
                "test -f task-cgroup.txt && cat /proc/self/cgroup > check-cgroup.$$ && mv check-cgroup.$$ check-cgroup.txt"
            task.healthCheck.delaySeconds = 0
            task.healthCheck.intervalSeconds = 0.1
            task.healthCheck.gracePeriodSeconds = 3600
            try await test.agent.launch(task)
            try await test.agent.waitUntil("a healthy update") { state in
                state.updates(forTask: "checked").contains { $0.status.hasHealthy && $0.status.healthy }
            }
            let cgroups = try String(contentsOfFile: test.path("check-cgroup.txt"), encoding: .utf8)
            let taskCgroups = try String(contentsOfFile: test.path("task-cgroup.txt"), encoding: .utf8)
            #expect(cgroups == taskCgroups, "check: \(cgroups)\ntask: \(taskCgroups)")
            #expect(cgroups.contains("/task-"), "\(cgroups)")
            #expect(
                cgroups.contains(
                    CgroupIsolation.executorCgroupName(
                        frameworkID: test.agent.configuration.frameworkID,
                        executorID: test.agent.configuration.executorID)), "\(cgroups)")
            await test.agent.kill(taskID: "checked")
            try await test.waitForStates(["checked": .taskKilled])
            await test.agent.shutdown()
        }
    }

    /// No cgroup outlives its task, a crashed worker, or the executor.
    @Test(.needsDemoWorker) func noCgroupIsLeftBehind() async throws {
        let directories = LockedValue<[String]>([])
        for coarse in [true, false] {
            try await ExecutorUnderTest.run(encoding: .protobuf, properties: properties(coarse: coarse)) { test in
                try self.requireCgroups(test)
                test.makeFIFO("ready")
                try await test.agent.launch(test.task("done", "true"))
                try await test.agent.launch(test.task("killed", "echo > ready; exec sleep 300"))
                try await test.agent.launch(self.closure(test, "crashed", "crash", ""))
                try await test.agent.launch(self.closure(test, "echoed", "echo", "x"))
                _ = await readFIFO(test.path("ready"))
                await test.agent.kill(taskID: "killed")
                try await test.waitForStates([
                    "done": .taskFinished, "killed": .taskKilled, "crashed": .taskFailed, "echoed": .taskFinished,
                ])
                // Every task's cgroup is given back once its processes are gone: removed, or kept
                // empty as a spare for the next task (spares go when the executor is idle, and here).
                // A fine-mode worker that sent its result may still be exiting: its cgroup goes then.
                let given = await self.waitUntil {
                    self.leftoverCgroups(test).filter { $0.split(separator: "/").last!.hasPrefix("task-") }.isEmpty
                }
                #expect(given, "coarse \(coarse): \(self.leftoverCgroups(test))")
                directories.withLock { $0 += test.isolation?.directories ?? [] }
                await test.agent.shutdown()
            }
        }
        for directory in directories.withLock({ $0 }) {
            #expect(!FileManager.default.fileExists(atPath: directory), "\(directory) left behind")
        }
    }
}
