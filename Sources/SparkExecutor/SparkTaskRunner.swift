public import ExecutorCore
public import MesosProto
public import PackageFetch

/// Runs every task the Spark way: waits for the package, fetches the task's own URIs, then hands a
/// closure task (`TaskInfo.data` set) to the worker pool and a command task to the command runner.
public struct SparkTaskRunner: TaskRunner {
    let context: SparkExecutorContext
    let fetcher: PackageFetcher
    let baseEnvironment: [String: String]
    let sandbox: String
    /// Runs closure tasks; nil until a worker pool is configured.
    let closures: (@Sendable (ExecutorSettings, FetchedPackage?) async -> (any TaskRunner)?)?
    /// When the agent already fetched the task's URIs (we stand in for Mesos's command executor).
    let taskURIsFetchedByAgent: Bool

    public init(
        context: SparkExecutorContext, fetcher: PackageFetcher, baseEnvironment: [String: String], sandbox: String,
        taskURIsFetchedByAgent: Bool = false,
        closures: (@Sendable (ExecutorSettings, FetchedPackage?) async -> (any TaskRunner)?)? = nil
    ) {
        self.context = context
        self.fetcher = fetcher
        self.baseEnvironment = baseEnvironment
        self.sandbox = sandbox
        self.taskURIsFetchedByAgent = taskURIsFetchedByAgent
        self.closures = closures
    }

    public func executorSubscribed(_ subscribed: Mesos_V1_Executor_Event.Subscribed) async -> (@Sendable () async -> Void)? {
        await context.configure(subscribed.executorInfo)
    }

    public func run(_ task: Mesos_V1_TaskInfo, control: TaskControl) async -> TaskOutcome {
        guard let current = await context.current() else {
            return .launchFailed(reason: .containerLaunchFailed, message: "the executor is not configured yet")
        }
        let prepared: SparkExecutorContext.Prepared
        switch current {
        case .failure(let error):
            return .launchFailed(reason: .containerLaunchFailed, message: "Executor configuration: \(error)")
        case .success(let value):
            prepared = value
        }
        var package: FetchedPackage?
        if let gate = prepared.package {
            do {
                package = try await gate.package()
            } catch {
                return .launchFailed(reason: .containerLaunchFailed, message: "Failed to fetch the package: \(error)")
            }
        }
        if task.hasCommand, !task.command.uris.isEmpty, !taskURIsFetchedByAgent {
            do {
                let uris = try task.command.uris.map { uri throws(FetchError) in
                    try FetchURI(
                        uri.value, extract: uri.extract, executable: uri.executable,
                        outputFile: uri.hasOutputFile ? uri.outputFile : nil, cache: uri.hasCache ? uri.cache : nil)
                }
                _ = try await fetcher.fetch(FetchRequest(additional: uris), into: sandbox)
            } catch {
                return .launchFailed(reason: .containerLaunchFailed, message: "Failed to fetch the task's URIs: \(error)")
            }
        }
        var environment = prepared.settings.taskEnvironment
        if let home = package?.sparkHome { environment["SPARK_HOME"] = home }
        if task.hasData && !task.data.isEmpty {
            guard let runner = await closures?(prepared.settings, package) else {
                return .error(
                    reason: .taskInvalid,
                    message: "closure tasks need a worker program: set spark.mesos.executor.worker")
            }
            return await runner.run(task, control: control)
        }
        guard task.hasCommand else {
            return .error(reason: .taskInvalid, message: "the task has neither a command nor closure data")
        }
        let extra = environment
        let commands = CommandTaskRunner(baseEnvironment: baseEnvironment, sandbox: sandbox) { extra }
        return await commands.run(task, control: control)
    }
}
