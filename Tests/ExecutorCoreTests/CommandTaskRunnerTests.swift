import SparkExecutor
import Foundation
import MesosProto
import ProcessSupervision
import SystemSupport
import SystemTestLock
import TaskRunning
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Real processes: the command runner against /bin/sh, each test in a sandbox of its own.
@Suite(.serialized, .systemTest)
final class CommandTaskRunnerTests {
    private let sandbox: String

    init() throws {
        var template = Array("/tmp/sme-sandbox-XXXXXX".utf8CString)
        guard let path = mkdtemp(&template) else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        sandbox = String(cString: path)
    }

    deinit {
        _ = sandbox.withCString { path in
            // Best effort: the tests only create a handful of small files.
            system("rm -rf '\(String(cString: path))'")
        }
    }

    private func task(_ id: String, shell: String? = nil, argv: [String]? = nil, env: [String: String] = [:])
        -> Mesos_V1_TaskInfo
    {
        var task = Mesos_V1_TaskInfo()
        task.name = id
        task.taskID.value = id
        task.agentID.value = "agent"
        if let shell { task.command.value = shell }
        if let argv {
            task.command.shell = false
            task.command.value = argv[0]
            task.command.arguments = argv
        }
        for (name, value) in env.sorted(by: { $0.key < $1.key }) {
            var variable = Mesos_V1_Environment.Variable()
            variable.name = name
            variable.value = value
            task.command.environment.variables.append(variable)
        }
        return task
    }

    private func runner() -> CommandTaskRunner {
        CommandTaskRunner(baseEnvironment: ["PATH": "/usr/bin:/bin", "FROM_EXECUTOR": "yes"], sandbox: sandbox)
    }

    private func read(_ path: String) -> String {
        guard let file = fopen(path, "r") else { return "" }
        defer { fclose(file) }
        var result = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            result += buffer[0..<count]
        }
        return String(decoding: result, as: UTF8.self)
    }

    @Test func shellCommandRunsInSandboxWithEnvironment() async throws {
        let control = TestControl()
        let outcome = await runner().run(
            task(
                "env", shell: "pwd; echo $FROM_EXECUTOR $FROM_TASK $MESOS_SANDBOX; echo oops >&2",
                env: ["FROM_TASK": "t"]),
            control: control.control)
        #expect(outcome == .succeeded(data: nil, message: "Command exited with status 0"))
        #expect(read("\(sandbox)/tasks/env/stdout") == "\(sandbox)\nyes t \(sandbox)\n")
        #expect(read("\(sandbox)/tasks/env/stderr") == "oops\n")
        #expect(control.startedCalled)
    }

    /// Two tasks whose ids differ only in characters a file name cannot hold (both `a_b` once made
    /// safe) write their output into directories of their own, neither into the other's.
    @Test func idsThatLookAlikeAsFileNamesKeepTheirOutputApart() async throws {
        for id in ["a/b", "a b", "a_b"] {
            let outcome = await runner().run(task(id, shell: "echo '\(id)'"), control: TestControl().control)
            #expect(outcome == .succeeded(data: nil, message: "Command exited with status 0"))
        }
        #expect(read("\(sandbox)/tasks/a_b/stdout") == "a_b\n")
        #expect(read(TaskAccount.directory(sandbox: sandbox, taskID: "a/b") + "/stdout") == "a/b\n")
        #expect(read(TaskAccount.directory(sandbox: sandbox, taskID: "a b") + "/stdout") == "a b\n")
        let names = try FileManager.default.contentsOfDirectory(atPath: sandbox + "/tasks")
        #expect(names.count == 3)
    }

    /// Run as root (as CI runs): a task of another user runs as that user (its groups included)
    /// in its own directory, which is its MESOS_SANDBOX and which it may write; its stdout and
    /// stderr are there as for any task, made before the directory became the user's (and so
    /// given to it with the directory).
    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func aTaskOfAnotherUserRunsAsItInItsOwnDirectory() async throws {
        // As Mesos's agent makes sandboxes: closed to other users.
        try #require(chmod(sandbox, 0o750) == 0)
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        var runner = runner()
        let directory = "\(sandbox)/tasks/as-nobody"
        runner.account = try TaskAccount.make(for: nobody, directory: directory)
        let outcome = await runner.run(
            task("as-nobody", shell: "id -u; id -G; pwd; echo $MESOS_SANDBOX; echo made > mine; cat mine"),
            control: TestControl().control)
        #expect(outcome == .succeeded(data: nil, message: "Command exited with status 0"))
        let groups = nobody.groups.map(String.init).joined(separator: " ")
        #expect(read("\(directory)/stdout") == "\(nobody.uid)\n\(groups)\n\(directory)\n\(directory)\nmade\n")
        var status = stat()
        #expect(stat("\(directory)/mine", &status) == 0 && status.st_uid == nobody.uid)
        #expect(stat(directory, &status) == 0 && status.st_uid == nobody.uid && status.st_gid == nobody.gid)
        #expect(status.st_mode & 0o777 == 0o750, "no other user's task looks in")
        for stream in ["stdout", "stderr"] {
            #expect(lstat("\(directory)/\(stream)", &status) == 0 && status.st_uid == nobody.uid, "\(stream)")
        }
        // The executor's sandbox stays the executor's, and the task's user alone may pass through
        // it (an ACL entry), or every user where the file system keeps no ACLs; `tasks` is passable,
        // listable by no other user.
        #expect(stat(sandbox, &status) == 0 && status.st_uid == 0)
        let daemon = try #require(try UserIdentity.lookUp("daemon"))
        if try Self.keepsACLs(beside: sandbox) {
            #expect(status.st_mode & 0o777 == 0o750)
            // O_PATH: only passage through the sandbox is asked for.
            #expect(daemon.open(sandbox + "/tasks", flags: __O_PATH | O_CLOEXEC) == -1 && errno == EACCES)
            #expect(nobody.open(sandbox + "/tasks", flags: __O_PATH | O_CLOEXEC) >= 0)
        } else {
            #expect(status.st_mode & 0o777 == 0o751)
        }
        #expect(stat(sandbox + "/tasks", &status) == 0 && status.st_mode & 0o777 == 0o751)
    }

    /// Run as root: a task of another user, let through the executor's sandbox to its own
    /// directory, cannot read what a task of the executor's own user wrote (its directory is 0750,
    /// as Mesos makes a task's sandbox); before, it was 0755 and its output readable to any user
    /// that could pass the sandbox.
    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func theOutputOfTheExecutorsOwnTasksIsClosedToOtherUsers() async throws {
        try #require(chmod(sandbox, 0o750) == 0)
        let own = await runner().run(task("own", shell: "echo secret"), control: TestControl().control)
        #expect(own == .succeeded(data: nil, message: "Command exited with status 0"))
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        var runner = runner()
        runner.account = try TaskAccount.make(for: nobody, directory: "\(sandbox)/tasks/peeker")
        let peek = await runner.run(
            task("peeker", shell: "cat ../own/stdout || echo refused"), control: TestControl().control)
        #expect(peek == .succeeded(data: nil, message: "Command exited with status 0"))
        #expect(read("\(sandbox)/tasks/peeker/stdout") == "refused\n")
        var status = stat()
        #expect(stat("\(sandbox)/tasks/own", &status) == 0 && status.st_mode & 0o777 == 0o750)
        #expect(nobody.open("\(sandbox)/tasks/own/stdout", flags: O_RDONLY | O_CLOEXEC) == -1 && errno == EACCES)
        #expect(read("\(sandbox)/tasks/own/stdout") == "secret\n")
    }

    /// Whether the file system of `path` keeps POSIX ACLs (tried on a directory of its own).
    static func keepsACLs(beside path: String) throws -> Bool {
        let probe = path + ".acl-probe"
        try #require(mkdir(probe, 0o700) == 0)
        defer { rmdir(probe) }
        return try #require(try UserIdentity.lookUp("nobody")).grantPassage(through: probe)
    }

    /// A task of another user that cannot reach its directory (closed again to others after it was
    /// made) fails at launch saying so, and nothing of it runs.
    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func aTaskOfAnotherUserThatCannotEnterItsDirectoryFailsAtLaunch() async throws {
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        var runner = runner()
        runner.account = try TaskAccount.make(for: nobody, directory: "\(sandbox)/tasks/shut-out")
        try #require(chmod(sandbox, 0o700) == 0)
        let outcome = await runner.run(task("shut-out", shell: "touch ran"), control: TestControl().control)
        guard case .launchFailed(let reason, let message) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason == .containerLaunchFailed)
        #expect(
            message.contains("entering the working directory \(sandbox)/tasks/shut-out as user nobody failed"),
            "\(message)")
        #expect(access("\(sandbox)/tasks/shut-out/ran", F_OK) != 0)
    }

    @Test func argvCommandAndExitCodes() async {
        let outcome = await runner().run(
            task("argv", argv: ["/bin/sh", "-c", "exit 3"]), control: TestControl().control)
        #expect(outcome == .failed(reason: .commandExecutorFailed, message: "Command exited with status 3"))
        let signaled = await runner().run(task("sig", shell: "kill -SEGV $$"), control: TestControl().control)
        #expect(
            signaled == .failed(reason: .commandExecutorFailed, message: "Command terminated by signal SIGSEGV (11)"))
    }

    @Test func programThatCannotStart() async {
        let outcome = await runner().run(
            task("missing", argv: ["/nonexistent/program"]), control: TestControl().control)
        guard case .launchFailed(let reason, let message) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason == .containerLaunchFailed)
        #expect(message.contains("/nonexistent/program") && message.contains("No such file"), "\(message)")
    }

    @Test func emptyCommandIsInvalid() async {
        let outcome = await runner().run(task("empty"), control: TestControl().control)
        #expect(outcome == .error(reason: .taskInvalid, message: "CommandInfo.value is empty: nothing to run"))
    }

    /// A NUL would end a program's argument early, so the program would run with less than the
    /// task says (`touch made\0; …` would run `touch made`): such a task is invalid, and nothing of
    /// it runs.
    @Test func aCommandHoldingANULIsInvalidAndNothingRuns() async {
        let shell = await runner().run(task("nul", shell: "touch made\u{0}; echo more"), control: TestControl().control)
        #expect(
            shell
                == .error(
                    reason: .taskInvalid,
                    message: "CommandInfo.value holds a NUL character, which no program argument can carry"))
        let argv = await runner().run(
            task("nul-argv", argv: ["/usr/bin/touch", "made\u{0}x"]), control: TestControl().control)
        #expect(
            argv
                == .error(
                    reason: .taskInvalid,
                    message: "CommandInfo.arguments[1] holds a NUL character, which no program argument can carry"))
        #expect(!FileManager.default.fileExists(atPath: sandbox + "/made"))
    }

    /// Standing in for Mesos's command executor: the agent's `--task_command` is what runs, its
    /// `--task_environment` lies between the executor's variables and the command's own, a secret
    /// it resolved is taken from it, and the task learns the role its resources were allocated to.
    @Test func theAgentsTaskCommandAndEnvironmentAreHonoured() async throws {
        var runner = runner()
        runner.commandExecutorFlags = try CommandExecutorFlags.parse([
            #"--task_environment={"variables":[{"name":"FROM_EXECUTOR","value":"agent"},"#
                + #"{"name":"BOTH","value":"agent"},{"name":"TOKEN","value":"resolved"}]}"#,
            #"--task_command={"shell":true,"value":"echo $FROM_EXECUTOR $BOTH $TOKEN $MESOS_ALLOCATION_ROLE","#
                + #""environment":{"variables":[{"name":"BOTH","value":"command"},"#
                + #"{"name":"TOKEN","type":"SECRET","secret":{"type":"REFERENCE","reference":{"name":"/t"}}}]}}"#,
        ])
        var task = task("image", shell: "echo not this one")
        var cpus = Mesos_V1_Resource()
        cpus.name = "cpus"
        cpus.allocationInfo.role = "analytics"
        task.resources = [cpus]
        let outcome = await runner.run(task, control: TestControl().control)
        #expect(outcome == .succeeded(data: nil, message: "Command exited with status 0"))
        #expect(read("\(sandbox)/tasks/image/stdout") == "agent command resolved analytics\n")
    }

    /// A task whose flags ask for a container this executor does not make fails at launch, and
    /// nothing of it runs.
    @Test func aTaskAskingForAContainerFailsAtLaunch() async throws {
        var runner = runner()
        runner.commandExecutorFlags = try CommandExecutorFlags.parse(["--rootfs=/var/lib/mesos/rootfs"])
        let outcome = await runner.run(task("image", shell: "touch ran"), control: TestControl().control)
        guard case .launchFailed(let reason, let message) = outcome else { Issue.record("\(outcome)"); return }
        #expect(reason == .containerLaunchFailed)
        #expect(message.hasPrefix("cannot run the task: the task has a container image"), "\(message)")
        #expect(access(sandbox + "/ran", F_OK) != 0)
    }

    /// A task that ignores SIGTERM, with a child that ignores it too: SIGKILL ends the whole tree.
    @Test func forceKillEndsTheWholeProcessTree() async throws {
        let control = TestControl()
        let script = "trap '' TERM; sleep 300 & echo $! > child.pid; echo ready > ready; wait"
        mkfifo("\(sandbox)/ready", 0o644)
        let runner = runner()
        let stubborn = task("stubborn", shell: script)
        async let outcome = runner.run(stubborn, control: control.control)
        await waitForFIFO("\(sandbox)/ready")
        control.send(.terminate)
        control.send(.forceKill)
        let result = await outcome
        #expect(result == .failed(reason: .commandExecutorFailed, message: "Command terminated by signal SIGKILL (9)"))
        let childPID = Int32(read("\(sandbox)/child.pid").trimmingCharacters(in: .whitespacesAndNewlines))!
        // The grandchild was in the task's process group, so it dies with it.
        #expect(
            await ProcessObservation.waitForExit(of: childPID, timeoutMilliseconds: 60_000),
            "child \(childPID) survived")
    }

    @Test func terminateReachesAPoliteTask() async throws {
        let control = TestControl()
        mkfifo("\(sandbox)/ready", 0o644)
        let runner = runner()
        let polite = task("polite", shell: "echo ready > ready; exec sleep 300")
        async let outcome = runner.run(polite, control: control.control)
        await waitForFIFO("\(sandbox)/ready")
        control.send(.terminate)
        let result = await outcome
        #expect(result == .failed(reason: .commandExecutorFailed, message: "Command terminated by signal SIGTERM (15)"))
    }

}

/// Records what a runner tells the runtime, and lets a test send stop requests.
final class TestControl: Sendable {
    private let box = StartedBox()
    let control: TaskControl

    init() {
        let box = self.box
        control = TaskControl { box.mark() }
    }

    var startedCalled: Bool { box.value }
    func send(_ request: StopRequest) { control.request(request) }
}

final class StartedBox: @unchecked Sendable {
    private let lock = NSLock()
    private var flag = false
    func mark() { lock.withLock { flag = true } }
    var value: Bool { lock.withLock { flag } }
}

/// Blocks (on a thread of its own, off the cooperative pool) until a task writes a line into the
/// FIFO at `path`.
func waitForFIFO(_ path: String) async {
    await BlockingThread.run {
        let fd = open(path, O_RDONLY)
        var byte: UInt8 = 0
        if fd >= 0 {
            _ = read(fd, &byte, 1)
            close(fd)
        }
    }
}
