import TaskRunning
public import ExecutorCore
public import Isolation
public import Logging
public import PackageFetch
import AgentConnection
import SystemSupport

/// How an executor is put together beyond its ``ExecutorConfiguration``; the defaults are the
/// executor program's.
public struct ExecutorOptions: Sendable {
    /// Spark properties from `--conf` (they win over `ExecutorInfo.data`).
    public var commandLine: [String: String] = [:]
    /// The environment tasks start from; nil: the executor's own (the `environment` given to
    /// ``withExecutor(_:environment:fetcher:logger:options:_:)``).
    public var taskEnvironment: [String: String]?
    /// Started as the agent's `mesos-executor`: the agent fetched the task's URIs, and the executor
    /// exits once its one task has ended.
    public var standsInForCommandExecutor = false
    /// What the agent gave its command executor on the command line, for the task (see
    /// ``CommandExecutorFlags``).
    public var commandExecutorFlags = CommandExecutorFlags()
    public var heartbeatInterval: Duration = .seconds(30 * 60)
    /// Runs when the executor goes idle (see ``ExecutorRuntime``), after `idleSettle` without a task
    /// (as does the removal of spare task cgroups).
    public var whenIdle: (@Sendable () -> Void)?
    public var idleSettle: Duration = .seconds(2)

    public init() {}
}

/// Runs one executor: its cgroups, the package fetcher, the Spark context, the task runner, the
/// agent client and the runtime, wired the one way the executor program wires them, with `body`
/// running beside the runtime (the program watches for SIGTERM there; tests drive the agent), given
/// the runtime and the executor's cgroups (nil when off or unusable; removed, with whatever is left
/// in them, when the executor ends). Returns the runtime's exit code once the runtime has ended
/// and `body` has returned. An error `body` throws cancels the runtime and is thrown once it has
/// ended.
///
/// SUBSCRIBE is sent first: the cgroups (about 1.5 ms of `/proc` parsing, libcgroup's start and
/// the executor's cgroups), the fetcher and the runner are made while it travels and the agent
/// answers (Tests/Benchmarks/HISTORY.md).
public func withExecutor(
    _ configuration: ExecutorConfiguration,
    environment: [String: String],
    fetcher fetcherConfiguration: FetcherConfiguration,
    logger: Logger,
    options: ExecutorOptions = ExecutorOptions(),
    _ body: @escaping @Sendable (ExecutorRuntime, CgroupIsolation?) async throws -> Void
) async throws -> Int32 {
    try await withAgentClient(configuration.agentClient) { client in
        client.beginSubscribe(ExecutorRuntime.firstSubscribe(of: configuration))
        let isolation = CgroupIsolation.forExecutor(configuration, logger: logger)
        defer { isolation?.removeAll() }
        // An idle executor keeps no spare task cgroup.
        let whenIdle: (@Sendable () -> Void)?
        if let isolation {
            whenIdle = { [outer = options.whenIdle] in
                outer?()
                isolation.removeSpares()
            }
        } else {
            whenIdle = options.whenIdle
        }
        return try await PackageFetcher.withFetcher(configuration: fetcherConfiguration, logger: logger) { fetcher in
            let context = SparkExecutorContext(
                commandLine: options.commandLine, sparkExecutorURI: configuration.sparkExecutorURI,
                environment: environment, sandbox: configuration.sandbox, fetcher: fetcher, logger: logger,
                isolation: isolation, logRotation: configuration.logRotation)
            let runner = SparkTaskRunner(
                context: context, fetcher: fetcher, baseEnvironment: options.taskEnvironment ?? environment,
                sandbox: configuration.sandbox, taskURIsFetchedByAgent: options.standsInForCommandExecutor,
                isolation: isolation, logRotation: configuration.logRotation,
                commandExecutorFlags: options.commandExecutorFlags,
                containerAddress: options.standsInForCommandExecutor
                    ? nil
                    : ContainerAddress.find(
                        environment: environment, agentHostAndPort: environment["MESOS_AGENT_ENDPOINT"]))
            let runtime = ExecutorRuntime(
                configuration: configuration, client: client, runner: runner, hooks: runner, logger: logger,
                heartbeatInterval: options.heartbeatInterval, exitAfterTasks: options.standsInForCommandExecutor,
                whenIdle: whenIdle, idleSettle: options.idleSettle)
            return try await withThrowingTaskGroup(of: Int32?.self) { group in
                group.addTask { await runtime.run() }
                group.addTask {
                    try await body(runtime, isolation)
                    return nil
                }
                // A body that throws leaves the group, which cancels the runtime and waits for it.
                var code: Int32 = -1
                for try await result in group {
                    if let result { code = result }
                }
                return code
            }
        }
    }
}
