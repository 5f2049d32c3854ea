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

/// The real `spark-mesos-executor` binary, started the way an agent starts it.
@Suite(.serialized, .systemTest)
struct BinaryEndToEndTests {
    /// The executable built next to this test bundle.
    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("spark-mesos-executor").path
    }

    /// An executor a test started. One the test lets go of without having waited for it (a test
    /// that failed or threw halfway) is sent SIGTERM, so that it shuts down, its tasks and workers
    /// with it, as it would for an agent, rather than run on after the test, waiting for an agent
    /// that is gone until its recovery timeout (15 minutes when the framework checkpoints).
    final class Launched: Sendable {
        let child: ChildProcess
        let stderrPath: String
        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

        init(child: ChildProcess, stderrPath: String) {
            self.child = child
            self.stderrPath = stderrPath
        }

        // A child already waited for is left alone (`signal` goes through its pidfd, never to a
        // reused pid).
        deinit { child.signal(SIGTERM) }
    }

    static func launch(
        _ environment: [String: String], sandbox: String, arguments: [String] = [], keepCacheDirectory: Bool = false,
        executable: String = executable
    ) throws -> Launched {
        let out = open(sandbox + "/stdout", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let err = open(sandbox + "/stderr", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer {
            close(out)
            close(err)
        }
        var environment = environment
        if !keepCacheDirectory { environment["SPARK_MESOS_EXECUTOR_CACHE_DIR"] = sandbox + "/.cache" }
        let child = try ChildProcess.spawn(
            SpawnRequest(
                executable: executable, arguments: ["spark-mesos-executor"] + arguments,
                environment: environment.map { "\($0.key)=\($0.value)" }, workingDirectory: sandbox,
                fileDescriptors: [(out, 1), (err, 2)]))
        return Launched(child: child, stderrPath: sandbox + "/stderr")
    }

    /// A local agent of one test's own (its framework id unique), with a fresh sandbox.
    static func withFreshAgent(
        isolation: isolated (any Actor)? = #isolation, _ body: (LocalAgent, String) async throws -> Void
    ) async throws {
        try await ExecutorUnderTest.withSandbox { sandbox in
            var configuration = LocalAgentConfiguration()
            configuration.useUniqueFrameworkID()
            configuration.sandboxDirectory = sandbox
            try await withLocalAgent(configuration) { agent in try await body(agent, sandbox) }
        }
    }

    @Test func malformedEnvironmentExitsOneWithOneLine() async throws {
        try await ExecutorUnderTest.withSandbox { sandbox in
            let launched = try Self.launch(
                [
                    "MESOS_FRAMEWORK_ID": "f", "MESOS_EXECUTOR_ID": "e", "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
                    "MESOS_CHECKPOINT": "yes",
                ],
                sandbox: sandbox)
            let termination = await launched.child.wait()
            #expect(termination == .exited(1))
            #expect(
                launched.stderr
                    == "spark-mesos-executor: MESOS_CHECKPOINT='yes' is malformed: expected \"1\" or \"0\"\n")
        }
    }

    /// A test that fails halfway leaves no executor behind: the one it let go of unwaited is sent
    /// SIGTERM and ends its task.
    @Test func anExecutorATestLetsGoOfShutsDown() async throws {
        try await Self.withFreshAgent { agent, sandbox in
            var task = agent.makeTask("left")
            task.command.value = "exec sleep 300"
            try await agent.launch(task)
            var launched: Launched? = try await Self.launch(agent.environment(), sandbox: sandbox)
            let pid = try #require(launched?.child.pid)
            try await agent.waitUntil("running") { $0.taskStates["left"] == .taskRunning }
            launched = nil
            // A generous bound, not a synchronisation: the executor ends as soon as it has killed its task.
            #expect(await ProcessObservation.waitForExit(of: pid, timeoutMilliseconds: 120_000))
            let final = try await agent.waitUntil("killed") { $0.taskStates["left"]?.isTerminal == true }
            #expect(final.taskStates["left"] == .taskKilled)
        }
    }

    @Test func sigtermShutsDownGracefully() async throws {
        try await Self.withFreshAgent { agent, sandbox in
            var task = agent.makeTask("sleeper")
            task.command.value = "exec sleep 300"
            try await agent.launch(task)
            let launched = try await Self.launch(agent.environment(), sandbox: sandbox)
            try await agent.waitUntil("running") { $0.taskStates["sleeper"] == .taskRunning }
            launched.child.signal(SIGTERM)
            let termination = await launched.child.wait()
            #expect(termination == .exited(0), "\(launched.stderr)")
            let final = await agent.state.updates(forTask: "sleeper").last?.status
            #expect(final?.state == .taskKilled)
            #expect(final?.reason == .executorTerminated)
            #expect(final?.message.contains("received SIGTERM") == true, "\(final?.message ?? "")")
            let acknowledged = await agent.state.updates.allSatisfy(\.acknowledged)
            #expect(acknowledged)
        }
    }

    /// A SIGTERM that comes while the executor is still starting (here it is pending before the
    /// executor's first instruction: Debian's python3 blocks it, raises it and execs the executor)
    /// waits for the executor's watch and then shuts it down gracefully, rather than killing it.
    @Test func aSigtermBeforeTheExecutorIsUpShutsItDownGracefully() async throws {
        try await Self.withFreshAgent { agent, sandbox in
            let script = """
                import os, signal, sys
                signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM])
                os.kill(os.getpid(), signal.SIGTERM)
                os.execv(sys.argv[1], sys.argv[1:])
                """
            let launched = try Self.launch(
                await agent.environment(), sandbox: sandbox, arguments: ["-c", script, Self.executable],
                executable: "/usr/bin/python3")
            // An executor that lost the signal would run on: stopped after a generous while, it fails.
            let watchdog = Task {
                try await Task.sleep(for: .seconds(120))
                launched.child.signal(SIGKILL)
            }
            let termination = await launched.child.wait()
            watchdog.cancel()
            #expect(termination == .exited(0), "\(launched.stderr)")
            #expect(launched.stderr.contains("received SIGTERM"), "\(launched.stderr)")
        }
    }

    /// The executor starts no libdispatch thread: it connects to the agent (an IP address) and
    /// its HTTP and TCP checks to loopback as they are, not through NIO's resolver, which hands an
    /// address to getaddrinfo on a libdispatch thread that it starts the first time.
    @Test func addressesAreConnectedToWithoutALibdispatchThread() async throws {
        try await Self.withFreshAgent { agent, sandbox in
            var targets: [ProbeTarget] = []
            for kind in [ProbeKind.http, .tcp] {
                let target = try await ProbeTarget.make(kind, sandbox: sandbox)
                try await target.setHealthy(true)
                targets.append(target)
                var task = agent.makeTask(kind.rawValue)
                task.command.value = "exec sleep 300"
                task.check = target.check()
                try await agent.launch(task)
            }
            let launched = try Self.launch(await agent.environment(), sandbox: sandbox)
            try await agent.waitUntil("a result of each check") { state in
                let statuses = state.updates.map(\.status).filter { $0.reason == .taskCheckStatusUpdated }
                return statuses.contains { $0.checkStatus.http.statusCode == 200 }
                    && statuses.contains { $0.checkStatus.tcp.succeeded }
            }
            let threads =
                (try? FileManager.default.contentsOfDirectory(atPath: "/proc/\(launched.child.pid)/task")) ?? []
            let names = threads.compactMap {
                try? String(contentsOfFile: "/proc/\(launched.child.pid)/task/\($0)/comm", encoding: .utf8)
            }
            #expect(!names.isEmpty)
            #expect(!names.contains { $0.contains("qos") || $0.contains("dispatch") }, "\(names)")
            launched.child.signal(SIGTERM)
            #expect(await launched.child.wait() == .exited(0), "\(launched.stderr)")
            for target in targets { await target.close() }
        }
    }

    /// Starts the executor as an agent's command executor (`MESOS_HTTP_COMMAND_EXECUTOR=1`) with
    /// the command executor's flags `arguments`, for one task running `command` (none: no task),
    /// under an agent of its own, and waits for it to exit; `check` then gets the agent, the
    /// sandbox, how the executor ended and what it wrote to stderr.
    static func standIn(
        running command: String?, arguments: [String],
        _ check: (LocalAgent, String, Termination, String) async throws -> Void
    ) async throws {
        try await withFreshAgent { agent, sandbox in
            if let command {
                var task = agent.makeTask("command")
                task.command.value = command
                try await agent.launch(task)
            }
            var environment = await agent.environment()
            environment["MESOS_HTTP_COMMAND_EXECUTOR"] = "1"
            let launched = try launch(environment, sandbox: sandbox, arguments: arguments)
            let termination = await launched.child.wait()
            try await check(agent, sandbox, termination, launched.stderr)
        }
    }

    /// Standing in for Mesos's command executor (`--http_command_executor`): it accepts the
    /// command executor's flags, runs the one task, and exits once its terminal update is acknowledged.
    @Test func standsInForTheCommandExecutor() async throws {
        try await Self.standIn(
            running: "echo CoarseGrainedExecutorBackend --executor-id 1",
            arguments: ["--launcher_dir=/usr/libexec/mesos", "--sandbox_directory=/mnt/mesos/sandbox"]
        ) { agent, sandbox, termination, stderr in
            #expect(termination == .exited(0), "\(stderr)")
            let states = await agent.state.updates(forTask: "command").map(\.status.state)
            #expect(states == [.taskStarting, .taskRunning, .taskFinished])
            let output = try String(contentsOfFile: sandbox + "/tasks/command/stdout", encoding: .utf8)
            #expect(output == "CoarseGrainedExecutorBackend --executor-id 1\n")
        }
    }

    /// Mesos's command executor runs one task: a second LAUNCH ends `TASK_FAILED` with its words,
    /// nothing of it runs, and the first task runs to its end.
    @Test func aCommandExecutorRunsOneTaskOnly() async throws {
        try await Self.withFreshAgent { agent, sandbox in
            var first = agent.makeTask("first")
            first.command.value = "echo one"
            var second = agent.makeTask("second")
            second.command.value = "touch '\(sandbox)/second-ran'"
            try await agent.launch(first)
            try await agent.launch(second)
            var environment = await agent.environment()
            environment["MESOS_HTTP_COMMAND_EXECUTOR"] = "1"
            let launched = try Self.launch(environment, sandbox: sandbox, arguments: [])
            let termination = await launched.child.wait()
            #expect(termination == .exited(0), "\(launched.stderr)")
            let firstStates = await agent.state.updates(forTask: "first").map(\.status.state)
            #expect(firstStates == [.taskStarting, .taskRunning, .taskFinished])
            let refused = await agent.state.updates(forTask: "second").map(\.status)
            #expect(refused.map(\.state) == [.taskFailed])
            #expect(refused.first?.message == #"Attempted to run multiple tasks using a "command" executor"#)
            #expect(access(sandbox + "/second-ran", F_OK) != 0)
        }
    }

    /// The flags an agent gives its command executor for a task, as it writes them: the command
    /// an image's entrypoint made (`--task_command`) runs, with the variables of its isolators
    /// (`--task_environment`); a task given an image's root filesystem fails at launch, saying so;
    /// a flag that cannot be read stops the executor with one line.
    @Test func standsInForTheCommandExecutorWithTheAgentsFlags() async throws {
        let flags = [
            "--launcher_dir=/usr/libexec/mesos",
            #"--task_environment={"variables":[{"name":"FROM_ISOLATOR","type":"VALUE","value":"isolator"}]}"#,
            #"--task_command={"shell":false,"value":"/bin/sh","arguments":["sh","-c","echo $FROM_ISOLATOR entrypoint"]}"#,
        ]
        try await Self.standIn(running: "echo the task's own command", arguments: flags) {
            agent, sandbox, termination, stderr in
            #expect(termination == .exited(0), "\(stderr)")
            let states = await agent.state.updates(forTask: "command").map(\.status.state)
            #expect(states == [.taskStarting, .taskRunning, .taskFinished])
            let output = try String(contentsOfFile: sandbox + "/tasks/command/stdout", encoding: .utf8)
            #expect(output == "isolator entrypoint\n")
        }
        let image = ["--rootfs=/var/lib/mesos/provisioner/rootfs", "--sandbox_directory=/mnt/mesos/sandbox"]
        try await Self.standIn(running: "touch ran", arguments: flags + image) { agent, sandbox, termination, stderr in
            #expect(termination == .exited(0), "\(stderr)")
            let last = try #require(await agent.state.updates(forTask: "command").last?.status)
            #expect(last.state == .taskFailed)
            #expect(last.reason == .containerLaunchFailed)
            #expect(
                last.message.contains("container image (the agent gave --rootfs=/var/lib/mesos/provisioner/rootfs)"))
            #expect(access(sandbox + "/ran", F_OK) != 0)
        }
        try await Self.standIn(running: nil, arguments: ["--task_command={"]) { _, _, termination, stderr in
            #expect(termination == .exited(1))
            #expect(stderr.hasPrefix("spark-mesos-executor: --task_command='{' is malformed"), "\(stderr)")
        }
    }
}

/// The shared package cache across separate executor processes.
@Suite(.serialized, .systemTest)
struct SharedCacheEndToEndTests {
    /// Runs one executor process under its own agent, with `cache` as its cache, until `task` finishes.
    private static func runExecutor(
        packageURL: String, cache: String, taskID: String
    ) async throws -> [Mesos_V1_TaskState] {
        try await ExecutorUnderTest.withSandbox { sandbox in
            var configuration = LocalAgentConfiguration()
            configuration.useUniqueFrameworkID()
            configuration.sandboxDirectory = sandbox
            configuration.executorInfo.data = Data(#"{"spark.executor.uri":"\#(packageURL)"}"#.utf8)
            return try await withLocalAgent(configuration) { agent in
                var task = agent.makeTask(taskID)
                task.command.value = "cd spark-*; ./bin/hello"
                try await agent.launch(task)
                var environment = await agent.environment()
                environment["SPARK_MESOS_EXECUTOR_CACHE_DIR"] = cache
                let launched = try BinaryEndToEndTests.launch(environment, sandbox: sandbox, keepCacheDirectory: true)
                try await agent.waitUntil("\(taskID) ended") { $0.taskStates[taskID]?.isTerminal == true }
                await agent.shutdown()
                _ = await launched.child.wait()
                return await agent.state.updates(forTask: taskID).map(\.status.state)
            }
        }
    }

    @Test func twoExecutorsDownloadOnceAndARestartedOneHitsTheCache() async throws {
        try await FetchEndToEndTests.withPackage { package in
            try await ExecutorUnderTest.withSandbox { directory in
                let cache = directory + "/cache"
                try await withLocalAgent(LocalAgentConfiguration()) { server in
                    let url = await server.publish(file: package.path, as: "spark-test-1.0.tgz")
                    async let first = Self.runExecutor(packageURL: url, cache: cache, taskID: "first")
                    async let second = Self.runExecutor(packageURL: url, cache: cache, taskID: "second")
                    let (a, b) = try await (first, second)
                    #expect(a.last == .taskFinished)
                    #expect(b.last == .taskFinished)
                    var downloads = await server.downloads["spark-test-1.0.tgz"]
                    #expect(downloads == 1, "two executors, one download")
                    let third = try await Self.runExecutor(packageURL: url, cache: cache, taskID: "third")
                    #expect(third.last == .taskFinished)
                    downloads = await server.downloads["spark-test-1.0.tgz"]
                    #expect(downloads == 1, "a new executor process hits the cache")
                }
            }
        }
    }
}
