public import TaskRunning
public import Isolation
public import MesosProto
public import PackageFetch
public import ProcessSupervision
import FetchPolicy
import WorkerPool

/// Runs every task the Spark way: waits for the package, fetches the task's own URIs, then hands a
/// closure task (`TaskInfo.data` set) to the worker pool and a command task to the command runner.
public struct SparkTaskRunner: TaskRunner, ExecutorHooks {
    let context: SparkExecutorContext
    let fetcher: PackageFetcher
    let baseEnvironment: [String: String]
    let sandbox: String
    /// When the agent already fetched the task's URIs (we stand in for Mesos's command executor).
    let taskURIsFetchedByAgent: Bool
    /// Cgroups for command tasks and workers; nil runs them without.
    let isolation: CgroupIsolation?
    /// How command tasks' stdout/stderr are bounded, unless the application's properties say otherwise.
    let logRotation: LogRotation
    /// What the agent gave its command executor on the command line (we stand in for it).
    let commandExecutorFlags: CommandExecutorFlags
    /// Command tasks' `MESOS_CONTAINER_IP` (``ContainerAddress``); nil: none.
    let containerAddress: String?

    public init(
        context: SparkExecutorContext, fetcher: PackageFetcher, baseEnvironment: [String: String], sandbox: String,
        taskURIsFetchedByAgent: Bool = false, isolation: CgroupIsolation? = nil, logRotation: LogRotation = .default,
        commandExecutorFlags: CommandExecutorFlags = CommandExecutorFlags(), containerAddress: String? = nil
    ) {
        self.containerAddress = containerAddress
        self.logRotation = logRotation
        self.commandExecutorFlags = commandExecutorFlags
        self.context = context
        self.fetcher = fetcher
        self.baseEnvironment = baseEnvironment
        self.sandbox = sandbox
        self.taskURIsFetchedByAgent = taskURIsFetchedByAgent
        self.isolation = isolation
    }

    public func executorSubscribed(_ subscribed: Mesos_V1_Executor_Event.Subscribed) async -> (
        @Sendable () async -> Void
    )? {
        await context.configure(subscribed.executorInfo)
    }

    public func executorShuttingDown() async {
        await context.stop()
    }

    /// The settings and the package every task needs, or why there are none.
    private func readiness() async -> Result<(SparkExecutorContext.Prepared, FetchedPackage?), TaskFailure> {
        guard let current = await context.current() else {
            return .failure(TaskFailure("the executor is not configured yet"))
        }
        let prepared: SparkExecutorContext.Prepared
        switch current {
        case .failure(let error):
            return .failure(TaskFailure("Executor configuration: \(error)"))
        case .success(let value):
            prepared = value
        }
        var package: FetchedPackage?
        if let gate = prepared.package {
            do {
                package = try await gate.package()
            } catch {
                return .failure(TaskFailure("Failed to fetch the package: \(error)"))
            }
        }
        return .success((prepared, package))
    }

    public func frameworkMessage(_ data: consuming [UInt8], reply: @escaping @Sendable ([UInt8]) async -> Void)
        async -> Bool
    {
        let prepared: SparkExecutorContext.Prepared
        let package: FetchedPackage?
        switch await readiness() {
        case .failure(let failure):
            if let answer = MiniTaskDispatcher.failAll(data, state: .lost, error: failure.message) {
                await reply(answer)
            }
            return true
        case .success(let ready):
            (prepared, package) = ready
        }
        let settings = prepared.settings
        let pool: WorkerPool
        do {
            pool = try await context.workerPool(settings: settings, package: package)
        } catch {
            if let answer = MiniTaskDispatcher.failAll(data, state: .lost, error: error.description) {
                await reply(answer)
            }
            return true
        }
        let dispatcher = MiniTaskDispatcher(
            pool: pool, sandbox: sandbox, resultSizeLimit: settings.maxResultBytesInStatus, send: reply)
        await dispatcher.handle(consume data)
        return true
    }

    public func run(_ task: Mesos_V1_TaskInfo, control: TaskControl) async -> TaskOutcome {
        let prepared: SparkExecutorContext.Prepared
        let package: FetchedPackage?
        switch await readiness() {
        case .failure(let failure):
            return .launchFailed(reason: .containerLaunchFailed, message: failure.message)
        case .success(let ready):
            (prepared, package) = ready
        }
        let isClosure = task.hasData && !task.data.isEmpty
        var account: TaskAccount?
        do {
            if let user = try user(of: task) {
                // A closure runs in a worker the executor's pools share, as the executor.
                guard !isClosure else {
                    return .launchFailed(
                        reason: .containerLaunchFailed,
                        message: "cannot run the task: it is to run as user '\(user.name)' (CommandInfo.user), "
                            + "and closure tasks run in the executor's workers, as the executor's user")
                }
                account = try TaskAccount.make(for: user, directory: taskDirectory(task))
            }
        } catch {
            return .launchFailed(reason: .containerLaunchFailed, message: "cannot run the task: \(error)")
        }
        if task.hasCommand, !task.command.uris.isEmpty, !taskURIsFetchedByAgent {
            do {
                let uris = try task.command.uris.map { uri throws(FetchError) in
                    try FetchURI(
                        uri.value, extract: uri.extract, executable: uri.executable,
                        outputFile: uri.hasOutputFile ? uri.outputFile : nil, cache: uri.hasCache ? uri.cache : nil)
                }
                var request = Self.taskFetchRequest(uris, task: task, settings: prepared.settings, package: package)
                request.user = account?.user
                _ = try await fetcher.fetch(request, into: account?.directory ?? sandbox)
            } catch {
                return .launchFailed(
                    reason: .containerLaunchFailed, message: "Failed to fetch the task's URIs: \(error)")
            }
        }
        if isClosure {
            let settings = prepared.settings
            let pool: WorkerPool
            do {
                pool = try await context.workerPool(settings: settings, package: package)
            } catch {
                return .launchFailed(reason: .containerLaunchFailed, message: "Cannot run the closure: \(error)")
            }
            let closures = ClosureTaskRunner(
                pool: pool, sandbox: sandbox, resultSizeLimit: settings.maxResultBytesInStatus)
            return await closures.run(task, control: control)
        }
        guard task.hasCommand else {
            return .error(reason: .taskInvalid, message: "the task has neither a command nor closure data")
        }
        let extra = prepared.settings.packageEnvironment(sparkHome: package?.sparkHome)
        var commands = CommandTaskRunner(baseEnvironment: baseEnvironment, sandbox: sandbox, isolation: isolation) {
            extra
        }
        commands.logRotation = prepared.settings.logRotation(overriding: logRotation)
        commands.commandExecutorFlags = commandExecutorFlags
        commands.account = account
        commands.containerAddress = containerAddress
        return await commands.run(task, control: control)
    }

    /// The user a task asks to run as when it is not the executor's (``TaskUser``); nil for the
    /// executor's, and always when the agent started the executor as its command executor (it
    /// started it as the task's user already). Only command tasks can run as another user.
    func user(of task: Mesos_V1_TaskInfo) throws(TaskUserError) -> UserIdentity? {
        guard !taskURIsFetchedByAgent, task.hasCommand, task.command.hasUser else { return nil }
        return try TaskUser.resolve(task.command.user)
    }

    /// Where a task of another user works (``TaskAccount``).
    func taskDirectory(_ task: Mesos_V1_TaskInfo) -> String {
        TaskAccount.directory(sandbox: sandbox, taskID: task.taskID.value)
    }
}

extension SparkTaskRunner {
    /// A command task's URIs go into the executor's sandbox: the sandbox may hold the `disk` of the
    /// executor and of the task (Mesos's disk limit is their sum), the package's files included.
    static func taskFetchRequest(
        _ uris: [FetchURI], task: Mesos_V1_TaskInfo, settings: SparkSettings, package: FetchedPackage?
    ) -> FetchRequest {
        let taskDisk = task.resources.filter { $0.name == "disk" && $0.hasScalar }.map(\.scalar.value)
        guard settings.diskLimitBytes != nil || !taskDisk.isEmpty else {
            return FetchRequest(additional: uris, cacheLink: settings.cacheLink)
        }
        let limit = (settings.diskLimitBytes ?? 0) + Int64((taskDisk.reduce(0, +) * 1_048_576).rounded(.down))
        return FetchRequest(
            additional: uris, cacheLink: settings.cacheLink, diskLimitBytes: limit,
            diskLimitName: "the disk resources of the executor and the task",
            diskUsedBytes: package?.items.reduce(0) { $0 + $1.bytes } ?? 0)
    }

    /// A task's COMMAND checks run as a command task runs: its environment (``CommandTaskRunner``'s
    /// layers), and for a task of another user, as that user in the task's directory.
    public func checkProcess(for task: Mesos_V1_TaskInfo) async -> CheckProcess {
        var extra: [String: String] = [:]
        if case .success((let prepared, let package)) = await readiness() {
            extra = prepared.settings.packageEnvironment(sparkHome: package?.sparkHome)
        }
        var process = CheckProcess()
        do {
            // A closure of another user never runs (see run(_:control:)), nor do its checks.
            if let user = try user(of: task) {
                process.user = user
                process.workingDirectory = taskDirectory(task)
            }
        } catch {
            process.unavailable = error.description
        }
        process.environment = CommandTaskRunner.environment(
            for: task, base: baseEnvironment, sandbox: process.workingDirectory ?? sandbox, extra: extra,
            flags: commandExecutorFlags, containerAddress: containerAddress)
        return process
    }
}

/// Why a task cannot start, as its message.
struct TaskFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
