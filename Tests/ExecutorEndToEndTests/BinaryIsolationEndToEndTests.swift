import Foundation
import Isolation
import LocalAgent
import MesosCodec
import MesosProto
import ProcessSupervision
import SystemTestLock
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The real executor binary's isolation: what it leaves behind when killed, its secrets, its orphans.
@Suite(.serialized, .systemTest)
struct BinaryIsolationEndToEndTests {
    private static func cgroupDirectories(containing name: String) -> [String] {
        let roots = ["cpu", "cpuacct", "memory", "freezer", "pids", "unified"].map { "/sys/fs/cgroup/" + $0 }
        var found: [String] = []
        for root in roots {
            guard let walker = FileManager.default.enumerator(atPath: root) else { continue }
            while let path = walker.nextObject() as? String {
                if path.hasSuffix(name) { found.append(root + "/" + path) }
                // Only ours are of interest; do not descend into the whole machine.
                if path.split(separator: "/").count > 3 { walker.skipDescendants() }
            }
        }
        return found
    }

    /// An executor killed with SIGKILL leaves its tasks' cgroups (and their processes) behind; a new
    /// executor with the same ids kills those processes and removes the cgroups before its first
    /// task runs (a task cgroup of the same name it then makes is a new directory).
    @Test(.needsCgroups) func aNewExecutorRemovesWhatAKilledOneLeft() async throws {
        try await ExecutorUnderTest.withSandbox { sandbox in
            var configuration = LocalAgentConfiguration()
            configuration.useUniqueFrameworkID()
            configuration.sandboxDirectory = sandbox
            let pid: Int32 = try await withLocalAgent(configuration) { agent in
                mkfifo(sandbox + "/ready", 0o644)
                var task = agent.makeTask("left-behind")
                task.command.value = "echo $$ > task.pid; echo > ready; exec sleep 300"
                try await agent.launch(task)
                let first = try BinaryEndToEndTests.launch(await agent.environment(), sandbox: sandbox)
                _ = await readFIFO(sandbox + "/ready")
                try #require(
                    first.stderr.contains("cgroups: "), "the executor found no usable cgroups: \(first.stderr)")
                let pid = Int32(
                    try String(contentsOfFile: sandbox + "/task.pid", encoding: .utf8)
                        .trimmingCharacters(in: .whitespacesAndNewlines))!
                first.child.signal(SIGKILL)
                _ = await first.child.wait()
                return pid
            }
            let executorCgroup = CgroupNames.executor(configuration)
            let leftBehind = Self.cgroupDirectories(containing: executorCgroup).flatMap { directory in
                ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
                    .filter { $0.hasPrefix("task-") }.map { directory + "/" + $0 }
            }
            let identities = leftBehind.map { (path: $0, inode: Self.inode($0)) }
            #expect(!leftBehind.isEmpty && identities.allSatisfy { $0.inode != nil }, "nothing was left to clean")
            #expect(kill(pid, 0) == 0, "the task should still run after its executor was killed")
            // The executor is started again with the same ids (a restarted agent, say).
            try await withLocalAgent(configuration) { agent in
                let second = try BinaryEndToEndTests.launch(await agent.environment(), sandbox: sandbox)
                var after = agent.makeTask("after")
                after.command.value = "true"
                try await agent.launch(after)
                try await agent.waitUntil("after ended") { $0.taskStates["after"]?.isTerminal == true }
                #expect(await agent.state.taskStates["after"] == .taskFinished)
                #expect(await processExits(pid), "pid \(pid) survived")
                for (path, inode) in identities {
                    #expect(Self.inode(path) != inode, "\(path) is still the cgroup left behind")
                }
                await agent.shutdown()
                let termination = await second.child.wait()
                #expect(termination == .exited(0), "\(second.stderr)")
            }
            #expect(Self.cgroupDirectories(containing: executorCgroup) == [])
        }
    }

    /// The inode of `path`, or nil when there is none: a directory removed and made again under the
    /// same name has another.
    static func inode(_ path: String) -> UInt64? {
        var status = stat()
        guard stat(path, &status) == 0 else { return nil }
        return UInt64(status.st_ino)
    }

    /// Environment secrets reach the task, file secrets are sandbox files with mode 0600, and the
    /// value is in no log line, not even at debug level, nor in any status update.
    @Test func secretsReachTheTaskAndNoLog() async throws {
        try await ExecutorUnderTest.withSandbox { sandbox in
            let secret = "s3cr3t-\(UInt32.random(in: 0...UInt32.max))"
            var configuration = LocalAgentConfiguration()
            configuration.useUniqueFrameworkID()
            configuration.sandboxDirectory = sandbox
            let properties = [
                "spark.mesos.executor.secret.values": secret + ",other",
                "spark.mesos.executor.secret.envkeys": "DB_PASSWORD,OTHER",
                "spark.mesos.executor.secret.filenames": "secrets/db,other",
            ]
            configuration.executorInfo.data = try JSONSerialization.data(withJSONObject: properties)
            try await withLocalAgent(configuration) { agent in
                var task = agent.makeTask("uses-secret")
                task.command.value = "test \"$DB_PASSWORD\" = \"$(cat secrets/db)\" && echo same"
                try await agent.launch(task)
                let launched = try BinaryEndToEndTests.launch(
                    await agent.environment(), sandbox: sandbox, arguments: ["--log-level", "debug"])
                try await agent.waitUntil("the task ended") { $0.taskStates["uses-secret"]?.isTerminal == true }
                await agent.shutdown()
                _ = await launched.child.wait()
                let state = await agent.state.taskStates["uses-secret"]
                #expect(state == .taskFinished, "\(launched.stderr)")
                #expect(try String(contentsOfFile: sandbox + "/tasks/uses-secret/stdout", encoding: .utf8) == "same\n")
                var info = stat()
                #expect(stat(sandbox + "/secrets/db", &info) == 0)
                #expect(info.st_mode & 0o777 == 0o600)
                #expect(!launched.stderr.isEmpty)
                #expect(!launched.stderr.contains(secret), "the executor's log shows the secret")
                let updates = await agent.state.updates
                #expect(!updates.contains { $0.status.message.contains(secret) })
            }
        }
    }

    /// A task whose child leaves the session and outlives the task's own process is killed with it
    /// (its cgroup is), and the executor (a child subreaper) reaps it: no zombie is left. (Without
    /// cgroups the executor finds such orphans by a marker they inherited, but only as well as it can
    /// see them at the task's end, so that path is not asserted here.)
    @Test func orphansOfATaskAreKilledAndReaped() async throws {
        for cgroups in ["auto"] {
            try await ExecutorUnderTest.withSandbox { sandbox in
                var configuration = LocalAgentConfiguration()
                configuration.useUniqueFrameworkID()
                configuration.sandboxDirectory = sandbox
                try await withLocalAgent(configuration) { agent in
                    mkfifo(sandbox + "/ready", 0o644)
                    var task = agent.makeTask("parent")
                    // The orphan's parent exits at once; the orphan is setsid'd and has written its pid
                    // (and opened the FIFO) before the task's own process ends.
                    task.command.value =
                        "(setsid sh -c 'echo $$ > orphan.pid; echo > ready; exec sleep 300' &) ; read x < ready"
                    try await agent.launch(task)
                    var environment = await agent.environment()
                    environment["SPARK_MESOS_EXECUTOR_CGROUPS"] = cgroups
                    let launched = try BinaryEndToEndTests.launch(environment, sandbox: sandbox)
                    try await agent.waitUntil("parent ended") { $0.taskStates["parent"]?.isTerminal == true }
                    let pid = Int32(
                        try String(contentsOfFile: sandbox + "/orphan.pid", encoding: .utf8)
                            .trimmingCharacters(in: .whitespacesAndNewlines))!
                    #expect(await processExits(pid), "orphan \(pid) survived (cgroups \(cgroups))")
                    await agent.shutdown()
                    let termination = await launched.child.wait()
                    #expect(termination == .exited(0), "\(launched.stderr)")
                    #expect((cgroups == "off") == launched.stderr.contains("SPARK_MESOS_EXECUTOR_CGROUPS=off"))
                }
            }
        }
    }
}

/// The executor cgroup name of a local agent's executor.
enum CgroupNames {
    static func executor(_ configuration: LocalAgentConfiguration) -> String {
        CgroupIsolation.executorCgroupName(
            frameworkID: configuration.frameworkID, executorID: configuration.executorID)
    }
}
