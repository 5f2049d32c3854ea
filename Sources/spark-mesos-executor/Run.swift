import AgentConnection
import ArgumentParser
import Dispatch
import ExecutorCore
import Isolation
import Logging
import PackageFetch
import ProcessSupervision
import SparkExecutor
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Executor mode: what the agent starts.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Subscribe to the agent and run the tasks it sends (the default).")

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError(
                "--log-level '\(logLevel)' is not valid; expected trace, debug, info, notice, warning, error or critical"
            )
        }
    }

    @Option(
        name: .long, help: "Encoding of calls and events: protobuf or json (overrides SPARK_MESOS_EXECUTOR_ENCODING).")
    var encoding: String?

    @Option(name: .long, help: "A Spark property, key=value (repeatable); wins over ExecutorInfo.data.")
    var conf: [String] = []

    @Option(
        name: .long,
        help: "Package cache directory (default: SPARK_MESOS_EXECUTOR_CACHE_DIR, else /var/cache/spark-mesos-executor)."
    )
    var cacheDir: String?

    /// Mesos's command executor is started with flags of its own (--launcher_dir=…); tolerated so
    /// this binary can stand in for it.
    @Argument(parsing: .allUnrecognized, help: .hidden)
    var ignoredArguments: [String] = []

    func run() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "spark-mesos-executor")
        var environment = ProcessEnvironment.current()
        if let encoding { environment[EnvironmentVariable.encoding.name] = encoding }
        let configuration: ExecutorConfiguration
        let commandLine: [String: String]
        do {
            configuration = try ExecutorConfiguration(
                environment: environment, workingDirectory: ProcessEnvironment.currentDirectory())
            commandLine = try SparkSettings.parseConfArguments(conf)
        } catch {
            ProcessEnvironment.printError("spark-mesos-executor: \(error)")
            throw ExitCode(1)
        }
        let releaseCode = configuration.releasesCodeWhenIdle
        if !ignoredArguments.isEmpty {
            logger.debug("ignoring arguments", metadata: ["arguments": "\(ignoredArguments)"])
        }
        // Tasks must not see the token the executor authenticates with.
        environment[EnvironmentVariable.authenticationToken.name] = nil
        let commandExecutor = configuration.standsInForCommandExecutor

        // Descendants of tasks that lose their parent come to us, so none escapes and no zombie stays.
        do {
            try ProcessReaper.shared.adoptOrphans()
        } catch {
            logger.warning(
                "cannot become a child subreaper; orphaned task processes go to init", metadata: ["error": "\(error)"])
        }
        let isolation = Self.isolation(configuration, logger: logger)
        defer { isolation?.removeAll() }
        // After start-up and between bursts of tasks, give back the heap they used and (unless turned
        // off) the pages of our own code, which come back through minor faults when tasks run again;
        // an idle executor keeps no spare task cgroup either.
        let releaseMemory: @Sendable () -> Void = {
            ResidentMemory.releaseFreeHeap()
            if releaseCode { ResidentMemory.releaseExecutableText() }
            isolation?.removeSpares()
        }

        var fetcherConfiguration = FetcherConfiguration(
            hadoopHome: configuration.hadoopHome, searchPath: configuration.searchPath,
            hadoopEnvironment: environment.map { "\($0.key)=\($0.value)" }.sorted())
        if let bytes = configuration.fetchMinimumFreeBytes {
            fetcherConfiguration.freeSpaceReserve = FreeSpaceReserve(bytes: bytes)
        }
        fetcherConfiguration.cacheDirectory = CacheDirectory.usable(
            cacheDir ?? configuration.cacheDirectory, logger: logger)

        var options = ExecutorOptions()
        options.commandLine = commandLine
        options.standsInForCommandExecutor = commandExecutor
        options.whenIdle = releaseMemory
        let code = try await withExecutor(
            configuration, environment: environment, fetcher: fetcherConfiguration, isolation: isolation,
            logger: logger, options: options
        ) { runtime in
            let signals = ProcessEnvironment.watchTermination { signal in
                Task { await runtime.shutdown(because: "received \(signal == SIGTERM ? "SIGTERM" : "SIGINT")") }
            }
            await runtime.stopped()
            for source in signals { source.cancel() }
        }
        // What tasks and workers wrote last is still in their pipes: to the files before we go.
        LogDrain.shared.flushAll()
        if code != 0 { throw ExitCode(code) }
    }

    /// The cgroups tasks and workers get, or nil with one warning saying why and what is lost.
    static func isolation(_ configuration: ExecutorConfiguration, logger: Logger) -> CgroupIsolation? {
        guard configuration.cgroupsEnabled else {
            logger.notice(
                "cgroups turned off (SPARK_MESOS_EXECUTOR_CGROUPS=off): no per-task limits, usage from rusage")
            return nil
        }
        let settings = CgroupIsolation.Settings(
            name: CgroupIsolation.executorCgroupName(
                frameworkID: configuration.frameworkID, executorID: configuration.executorID),
            parent: configuration.cgroupParent, hardCPULimits: configuration.cgroupsEnableCFS)
        switch CgroupIsolation.detect(settings) {
        case .available(let isolation):
            logger.info("\(isolation.summary)")
            return isolation
        case .unavailable(let why):
            logger.warning(
                "tasks run without cgroups: \(why); lost: per-task memory and CPU limits, OOM attribution and cgroup containment (usage comes from rusage, orphans are still reaped and killed with their process group)"
            )
            return nil
        }
    }
}
