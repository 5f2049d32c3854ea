import AgentConnection
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
struct Run {
    let options: RunOptions

    /// Runs the executor until the agent or a signal ends it; returns the exit code.
    func run() async -> Int32 {
        // One event loop carries every connection the executor has, and starts while the rest of
        // start-up runs (Tests/Benchmarks/HISTORY.md: a second loop gained nothing, paired).
        EventLoops.startEarly(threads: 1)
        let level = options.logLevel
        LoggingSystem.bootstrap { label in
            var handler = FileDescriptorLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "spark-mesos-executor")
        var environment = ProcessEnvironment.current()
        if let encoding = options.encoding { environment[EnvironmentVariable.encoding.name] = encoding }
        let configuration: ExecutorConfiguration
        let commandLine: [String: String]
        do {
            configuration = try ExecutorConfiguration(
                environment: environment, workingDirectory: ProcessEnvironment.currentDirectory())
            commandLine = try SparkSettings.parseConfArguments(options.conf)
        } catch {
            ProcessEnvironment.printError("spark-mesos-executor: \(error)")
            return 1
        }
        let releaseCode = configuration.releasesCodeWhenIdle
        if !options.ignored.isEmpty {
            logger.debug("ignoring arguments", metadata: ["arguments": "\(options.ignored)"])
        }
        // Tasks must not see the token the executor authenticates with.
        environment[EnvironmentVariable.authenticationToken.name] = nil
        let commandExecutor = configuration.standsInForCommandExecutor
        var commandExecutorFlags = CommandExecutorFlags()
        if commandExecutor {
            do {
                commandExecutorFlags = try CommandExecutorFlags.parse(options.ignored)
            } catch {
                ProcessEnvironment.printError("spark-mesos-executor: \(error)")
                return 1
            }
        }

        // Descendants of tasks that lose their parent come to us, so none escapes and no zombie stays.
        do {
            try ProcessReaper.shared.adoptOrphans()
        } catch {
            logger.warning(
                "cannot become a child subreaper; orphaned task processes go to init", metadata: ["error": "\(error)"])
        }
        // After start-up and between bursts of tasks, give back the relocation table the loader
        // read, the heap they used and (unless turned off) the pages of our own code, which come
        // back through minor faults when tasks run again.
        let releaseMemory: @Sendable () -> Void = {
            // The relocation table is dead once the loader is done (released by the first call only).
            ResidentMemory.releaseRelocationTable()
            // What libcgroup zeroed at start and never filled (about 0.8 MB of its .bss).
            CgroupIsolation.releaseUnusedLibraryMemory()
            ResidentMemory.releaseFreeHeap()
            if releaseCode { ResidentMemory.releaseExecutableText() }
        }

        var fetcherConfiguration = FetcherConfiguration(
            hadoopHome: configuration.hadoopHome, searchPath: configuration.searchPath,
            hadoopEnvironment: environment.map { "\($0.key)=\($0.value)" }.sorted())
        if let bytes = configuration.fetchMinimumFreeBytes {
            fetcherConfiguration.freeSpaceReserve = FreeSpaceReserve(bytes: bytes)
        }
        fetcherConfiguration.cacheDirectory = CacheDirectory.usable(
            options.cacheDirectory ?? configuration.cacheDirectory, logger: logger)

        var executorOptions = ExecutorOptions()
        executorOptions.commandLine = commandLine
        executorOptions.standsInForCommandExecutor = commandExecutor
        executorOptions.commandExecutorFlags = commandExecutorFlags
        executorOptions.whenIdle = releaseMemory
        let code: Int32
        do {
            code = try await withExecutor(
                configuration, environment: environment, fetcher: fetcherConfiguration, logger: logger,
                options: executorOptions
            ) { runtime, _ in
                let signals = ProcessEnvironment.watchTermination { signal in
                    Task { await runtime.shutdown(because: "received \(signal == SIGTERM ? "SIGTERM" : "SIGINT")") }
                }
                await runtime.stopped()
                for source in signals { source.cancel() }
            }
        } catch {
            logger.critical("executor stopped by an error", metadata: ["error": "\(error)"])
            code = 1
        }
        // What tasks and workers wrote last is still in their pipes: to the files before we go.
        LogDrain.shared.flushAll()
        return code
    }
}
