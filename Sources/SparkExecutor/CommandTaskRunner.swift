import MesosCodec
public import MesosProto
public import Isolation
public import ProcessSupervision
public import TaskRunning

#if canImport(Glibc)
    import Glibc
#endif

/// Runs `TaskInfo.command` the way Mesos's command executor does: `sh -c value` by default,
/// or `value` with `arguments` as argv when `shell` is false; in the sandbox, with the executor's
/// environment plus the command's own variables; in its own session so the whole process tree
/// can be signalled.
public struct CommandTaskRunner: TaskRunner {
    /// The executor's environment, inherited by every task.
    public let baseEnvironment: [String: String]
    /// The sandbox: the working directory of every task.
    public let sandbox: String
    /// Extra variables every task gets (SPARK_HOME once a package is ready, …).
    public let extraEnvironment: @Sendable () async -> [String: String]
    /// Each task in a cgroup of its own, with limits from its resources; nil runs tasks without.
    public let isolation: CgroupIsolation?
    /// How the task's stdout/stderr files are bounded.
    public var logRotation: LogRotation = .default
    /// What the agent gave on the command line when the executor stands in for its command executor.
    public var commandExecutorFlags = CommandExecutorFlags()
    /// For a task of another user (``TaskUser``): that user and the directory it works in, which is
    /// also its `MESOS_SANDBOX`, still the executor's: the run gives it to the user once the task's
    /// stdout and stderr are open in it. Nil runs the task as the executor, in the sandbox.
    public var account: TaskAccount?
    /// `MESOS_CONTAINER_IP` for every task, as Mesos's default executor gives it (``ContainerAddress``);
    /// nil gives none (standing in for the command executor, which gives none either).
    public var containerAddress: String?

    public init(
        baseEnvironment: [String: String], sandbox: String, isolation: CgroupIsolation? = nil,
        extraEnvironment: @escaping @Sendable () async -> [String: String] = { [:] }
    ) {
        self.baseEnvironment = baseEnvironment
        self.sandbox = sandbox
        self.isolation = isolation
        self.extraEnvironment = extraEnvironment
    }

    /// The field of `command` whose text holds a NUL (`CommandInfo.value`, `CommandInfo.arguments[1]`).
    static func fieldHoldingNUL(_ command: Mesos_V1_CommandInfo) -> String? {
        if command.value.utf8.contains(0) { return "CommandInfo.value" }
        if let index = command.arguments.firstIndex(where: { $0.utf8.contains(0) }) {
            return "CommandInfo.arguments[\(index)]"
        }
        return nil
    }

    public func run(_ task: Mesos_V1_TaskInfo, control: TaskControl) async -> TaskOutcome {
        if let refusal = commandExecutorFlags.refusal() {
            return .launchFailed(reason: .containerLaunchFailed, message: "cannot run the task: \(refusal)")
        }
        let command = commandExecutorFlags.taskCommand ?? task.command
        let argv: [String]
        let executable: String
        if command.shell {
            guard command.hasValue, !command.value.isEmpty else {
                return .error(reason: .taskInvalid, message: "CommandInfo.value is empty: nothing to run")
            }
            executable = "/bin/sh"
            argv = ["sh", "-c", command.value]
        } else {
            guard command.hasValue, !command.value.isEmpty else {
                return .error(reason: .taskInvalid, message: "CommandInfo.value (the program to run) is empty")
            }
            executable = command.value
            argv = command.arguments.isEmpty ? [command.value] : command.arguments
        }
        // A program's arguments end at a NUL: the program would run with less than the task says.
        if let field = Self.fieldHoldingNUL(command) {
            return .error(
                reason: .taskInvalid, message: "\(field) holds a NUL character, which no program argument can carry")
        }
        let limits: CgroupLimits
        do {
            limits = try CgroupLimits(task: task, hardCPULimit: isolation?.settings.hardCPULimits ?? false)
        } catch {
            return .error(reason: .taskInvalid, message: error.description)
        }
        if let name = Self.unresolvedSecret(in: command, flags: commandExecutorFlags) {
            return .error(
                reason: .taskInvalid,
                message: "environment variable \(name) is a secret reference the agent did not resolve")
        }
        var extra = await extraEnvironment()
        // Without cgroups, the task's escaped descendants are found by a variable they inherit.
        let marker = isolation == nil ? TaskProcesses.newMarker() : nil
        if let marker { extra[TaskProcesses.markerVariable] = marker }
        let workingDirectory = account?.directory ?? sandbox
        let environment = Self.environment(
            for: task, base: baseEnvironment, sandbox: workingDirectory, extra: extra, flags: commandExecutorFlags,
            containerAddress: containerAddress)
        if let bad = environment.first(where: {
            $0.key.isEmpty || $0.key.contains("=") || $0.key.utf8.contains(0) || $0.value.utf8.contains(0)
        }) {
            return .error(reason: .taskInvalid, message: "environment variable name '\(bad.key)' is not valid")
        }
        let output: StandardStreamFiles
        do {
            output = try StandardStreamFiles(
                directory: account?.directory ?? TaskAccount.directory(sandbox: sandbox, taskID: task.taskID.value),
                rotation: logRotation)
        } catch {
            return .launchFailed(
                reason: .containerLaunchFailed, message: "cannot create the task's log files: \(error)")
        }
        defer { output.close() }
        do {
            // The directory of a task of another user is the user's once what is fetched for it and
            // its stdout and stderr are there, as Mesos's fetcher gives a task's URIs to its user
            // (files linked from the fetch cache excepted): until then no process of the user can
            // put anything where the executor writes.
            try account?.giveDirectory()
        } catch {
            return .launchFailed(reason: .containerLaunchFailed, message: "cannot run the task: \(error)")
        }
        var cgroup: Cgroup?
        var joins = CgroupJoin()
        if let isolation {
            do {
                cgroup = try isolation.makeTaskCgroup(limits: limits)
                joins = try cgroup!.openSpawnJoin()
            } catch {
                if let cgroup { await isolation.destroy(cgroup) }
                return .launchFailed(
                    reason: .containerLaunchFailed, message: "cannot create the task's cgroup: \(error)")
            }
        }
        let child: ChildProcess
        do {
            defer { joins.close() }
            child = try ChildProcess.spawn(
                SpawnRequest(
                    executable: executable, arguments: argv,
                    environment: environment.map { "\($0.key)=\($0.value)" }.sorted(),
                    workingDirectory: workingDirectory,
                    fileDescriptors: output.mappings, joinCgroups: joins,
                    oomScoreAdjustment: cgroup == nil ? nil : limits.oomScoreAdjustment(),
                    user: account?.user))
        } catch {
            if let isolation, let cgroup { await isolation.destroy(cgroup) }
            return .launchFailed(reason: .containerLaunchFailed, message: "Failed to launch the command: \(error)")
        }
        control.runs(in: cgroup)
        await control.started()
        let ending = await TaskProcesses(child: child, cgroup: cgroup, marker: marker).supervise(obeying: control)
        var measurements = ending.measurements
        var oomKilled = false
        if let cgroup, let isolation {
            oomKilled = cgroup.oomKills > 0
            await isolation.destroy(cgroup)
        }
        // Every process of the task is gone (cgroup) or at least its main one: what they wrote
        // is in the pipes, and lands in the files before the terminal update.
        output.flush()
        let termination = ending.termination
        if oomKilled && !termination.isSuccess, let limit = cgroup?.limits.memoryBytes {
            let peak = measurements.peakMemoryBytes ?? Int64(limit)
            measurements.limitedResourceName = "mem"
            measurements.limitedResourceAmount = Double(peak) / 1_048_576
            control.record(measurements)
            return .failed(
                reason: .containerLimitationMemory,
                message: MemoryLimitMessage.text(limit: limit, peak: peak) + "; Command \(termination)")
        }
        control.record(measurements)
        switch termination {
        case .exited(0):
            return .succeeded(data: nil, message: "Command exited with status 0")
        case .exited(let code):
            return .failed(reason: .commandExecutorFailed, message: "Command exited with status \(code)")
        case .signaled:
            return .failed(reason: .commandExecutorFailed, message: "Command \(termination)")
        }
    }
}

extension CommandTaskRunner {
    /// The environment a command task runs with (and its checks see), layered as Mesos's command
    /// executor layers it: `base` (the executor's), `MESOS_SANDBOX`, `extra` (the package's
    /// variables), the agent's `--task_environment`, the command's own variables (a SECRET one: the
    /// agent's resolution of it, else its value), and `MESOS_ALLOCATION_ROLE`, the role the task's
    /// resources were allocated to, and `MESOS_CONTAINER_IP` when there is a `containerAddress`.
    static func environment(
        for task: Mesos_V1_TaskInfo, base: [String: String], sandbox: String, extra: [String: String],
        flags: CommandExecutorFlags, containerAddress: String? = nil
    ) -> [String: String] {
        var environment = base
        environment["MESOS_SANDBOX"] = sandbox
        for (name, value) in extra { environment[name] = value }
        for (name, value) in flags.taskEnvironment { environment[name] = value }
        for variable in (flags.taskCommand ?? task.command).environment.variables {
            if variable.type == .secret {
                // The agent resolved it for its command executor (--task_environment).
                if flags.taskEnvironment[variable.name] != nil { continue }
                environment[variable.name] = String(decoding: variable.secret.value.data, as: UTF8.self)
            } else {
                environment[variable.name] = variable.value
            }
        }
        if let first = task.resources.first, first.hasAllocationInfo, first.allocationInfo.hasRole {
            environment["MESOS_ALLOCATION_ROLE"] = first.allocationInfo.role
        }
        if let containerAddress { environment["MESOS_CONTAINER_IP"] = containerAddress }
        return environment
    }

    /// The first SECRET variable of `command` that the agent did not resolve (`--task_environment`)
    /// and that does not carry its value: a reference only an agent can resolve. Nil when none.
    static func unresolvedSecret(in command: Mesos_V1_CommandInfo, flags: CommandExecutorFlags) -> String? {
        command.environment.variables.first {
            $0.type == .secret && flags.taskEnvironment[$0.name] == nil
                && !($0.secret.type == .value && $0.secret.hasValue)
        }?.name
    }
}
