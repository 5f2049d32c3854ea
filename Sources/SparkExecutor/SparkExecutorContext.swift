import FetchPolicy
import ExecutorCore
public import Isolation
public import Logging
public import MesosProto
public import PackageFetch
public import ProcessSupervision
public import WorkerPool
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// What the executor learns at SUBSCRIBED and shares with every task: its settings and its package.
public actor SparkExecutorContext {
    /// Settings and the package gate, once SUBSCRIBED arrived.
    public struct Prepared: Sendable {
        public let settings: SparkSettings
        /// nil when there is nothing to fetch (no URI, no executor home).
        public let package: PackageGate?
    }

    private let commandLine: [String: String]
    /// `SPARK_EXECUTOR_URI`.
    private let sparkExecutorURI: String?
    /// The executor's environment, the base of every worker's.
    private let environment: [String: String]
    private let sandbox: String
    private let fetcher: PackageFetcher
    private let logger: Logger
    private let isolation: CgroupIsolation?
    private let logRotation: LogRotation
    private var prepared: Result<Prepared, SettingsError>?
    /// The worker pool: created once the package is ready when a worker program is configured,
    /// else when the first closure (or mini-task batch) needs it.
    private var pool: WorkerPool?
    private var stopping = false
    /// Long-lived work (the pool's `run()`), hosted by the background task `configure` returns.
    private let hosted = ChildTaskQueue()

    public init(
        commandLine: [String: String], sparkExecutorURI: String? = nil, environment: [String: String], sandbox: String,
        fetcher: PackageFetcher, logger: Logger, isolation: CgroupIsolation? = nil, logRotation: LogRotation = .default
    ) {
        self.logRotation = logRotation
        self.commandLine = commandLine
        self.sparkExecutorURI = sparkExecutorURI
        self.environment = environment
        self.sandbox = sandbox
        self.fetcher = fetcher
        self.logger = logger
        self.isolation = isolation
    }

    /// Reads the settings from the ExecutorInfo and returns the work that fetches the package
    /// eagerly, so the download overlaps task scheduling. Later calls (re-subscriptions) change nothing.
    public func configure(_ executorInfo: Mesos_V1_ExecutorInfo) -> (@Sendable () async -> Void)? {
        guard prepared == nil else { return nil }
        let prefetch = prepare(executorInfo)
        let hosted = self.hosted
        return {
            await withDiscardingTaskGroup { group in
                if let prefetch { group.addTask { await prefetch() } }
                await hosted.host(in: &group)
            }
        }
    }

    private func prepare(_ executorInfo: Mesos_V1_ExecutorInfo) -> (@Sendable () async -> Void)? {
        let settings: SparkSettings
        do {
            settings = try SparkSettings(
                executorInfo: executorInfo, commandLine: commandLine, sparkExecutorURI: sparkExecutorURI)
        } catch {
            logger.error("executor configuration is invalid; every task will fail", metadata: ["error": "\(error)"])
            prepared = .failure(error)
            return nil
        }
        do {
            try writeSecretFiles(settings.secretFiles)
        } catch {
            logger.error("executor secrets cannot be written; every task will fail", metadata: ["error": "\(error)"])
            prepared = .failure(error)
            return nil
        }
        if !settings.unknownKeys.isEmpty {
            logger.debug(
                "ignoring properties this executor does not use", metadata: ["keys": "\(settings.unknownKeys)"])
        }
        var request: FetchRequest
        do {
            request = try FetchRequest(sparkProperties: settings.properties)
            request.diskLimitBytes = settings.diskLimitBytes
            request.cacheLink = settings.cacheLink
            if !settings.cacheEnabled {
                request.package?.cache = false
                for index in request.additional.indices { request.additional[index].cache = false }
            }
        } catch {
            logger.error("package URI is invalid", metadata: ["error": "\(error)"])
            let failure = error
            let gate = PackageGate { () async throws(FetchError) -> FetchedPackage in throw failure }
            prepared = .success(Prepared(settings: settings, package: gate))
            return nil
        }
        guard request.package != nil || !request.additional.isEmpty || request.executorHome != nil else {
            prepared = .success(Prepared(settings: settings, package: nil))
            guard settings.workerPath != nil else { return nil }
            return { @Sendable in await self.startWorkers(settings: settings, package: nil) }
        }
        let fetcher = self.fetcher
        let sandbox = self.sandbox
        let finalRequest = request
        let gate = PackageGate { () async throws(FetchError) -> FetchedPackage in
            try await fetcher.fetch(finalRequest, into: sandbox)
        }
        prepared = .success(Prepared(settings: settings, package: gate))
        let logger = self.logger
        return {
            do {
                let package = try await gate.package()
                logger.info(
                    "package ready",
                    metadata: [
                        "SPARK_HOME": "\(package.sparkHome ?? "-")", "bytes": "\(package.bytesFetched)",
                        "cache hit": "\(package.allCacheHits)", "duration": "\(package.duration)",
                    ])
                if settings.workerPath != nil { await self.startWorkers(settings: settings, package: package) }
            } catch {
                logger.error(
                    "package fetch failed; waiting tasks fail, the next task retries", metadata: ["error": "\(error)"])
            }
        }
    }

    /// File secrets become sandbox files only the executor's user can read (mode 0600), written
    /// before any task runs. Errors name the file, never the content. A name is followed inside
    /// the sandbox only: each directory on its way is opened without following a link (what the
    /// agent's fetcher extracted there may hold links to anywhere), and the file is written only
    /// if it is a regular file of its own (not a FIFO, not a second name of a file elsewhere).
    private func writeSecretFiles(_ files: [String: String]) throws(SettingsError) {
        for (name, value) in files.sorted(by: { $0.key < $1.key }) {
            func refusal(_ why: String) -> SettingsError {
                SettingsError(
                    key: "spark.mesos.executor.secret.filenames", value: name,
                    expected: "a file the executor can write in its sandbox (\(why))")
            }
            var directory = open(sandbox, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            guard directory >= 0 else { throw refusal("\(sandbox): \(errnoText(errno))") }
            let components = name.split(separator: "/").map(String.init)
            for component in components.dropLast() {
                _ = mkdirat(directory, component, 0o700)
                let next = openat(directory, component, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
                let why = next >= 0 ? "" : Self.whyNot(component, in: directory, errno: errno)
                close(directory)
                guard next >= 0 else { throw refusal("\(component): \(why)") }
                directory = next
            }
            defer { close(directory) }
            let last = components.last ?? name
            let fd = openat(directory, last, O_WRONLY | O_CREAT | O_NONBLOCK | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw refusal("\(last): \(Self.whyNot(last, in: directory, errno: errno))") }
            defer { close(fd) }
            var status = stat()
            guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG, status.st_nlink == 1 else {
                throw refusal("\(last): not a regular file of its own")
            }
            let bytes = Array(value.utf8)
            let written = bytes.withUnsafeBytes { ftruncate(fd, 0) == 0 && fchmod(fd, 0o600) == 0 && writeAll(fd, $0) }
            guard written else { throw refusal(errnoText(errno)) }
        }
    }

    /// Why `name` in the directory open at `directory` could not be opened (`code`): what is
    /// there when it is a link or a file of another kind, else the system's reason.
    private static func whyNot(_ name: String, in directory: Int32, errno code: Int32) -> String {
        var status = stat()
        guard fstatat(directory, name, &status, AT_SYMLINK_NOFOLLOW) == 0 else { return errnoText(code) }
        switch status.st_mode & S_IFMT {
        case S_IFLNK: return "a link, not a file or directory of the sandbox"
        case S_IFREG, S_IFDIR: return errnoText(code)
        default: return "not a regular file of its own"
        }
    }

    /// The settings and package gate, or the configuration error every task fails with.
    public func current() -> Result<Prepared, SettingsError>? { prepared }

    /// Starts the worker pool as soon as the package is ready, so that coarse-mode workers (and
    /// fine mode's fork server) are warm before the first closure arrives.
    private func startWorkers(settings: SparkSettings, package: FetchedPackage?) {
        do {
            _ = try workerPool(settings: settings, package: package)
        } catch {
            logger.error("cannot start the worker pool", metadata: ["error": "\(error)"])
        }
    }

    /// The worker pool for closures: coarse mode with `cores` warm workers, fine mode with a fresh
    /// worker per closure. Workers get the executor's environment, `spark.executorEnv.*` and SPARK_HOME.
    public func workerPool(settings: SparkSettings, package: FetchedPackage?) throws(WorkerPoolError) -> WorkerPool {
        if let pool { return pool }
        let environment = self.environment.merging(settings.packageEnvironment(sparkHome: package?.sparkHome)) {
            _, extra in extra
        }
        guard !stopping else { throw WorkerPoolError.shuttingDown }
        let program = try WorkerPoolConfiguration.resolveProgram(settings.workerPath, packageRoot: package?.sparkHome)
        var configuration = WorkerPoolConfiguration(
            program: program, sandbox: sandbox,
            mode: settings.coarse ? .coarse(workers: settings.cores) : .fine(maximumWorkers: max(16, settings.cores)),
            environment: environment, forkServer: settings.forkServer,
            notice: { [logger] message in logger.notice("\(message)") })
        configuration.isolation = isolation
        configuration.poolLimits = CgroupLimits(
            memoryBytes: settings.workerPoolMemoryBytes.map { max($0, CgroupLimits.minimumMemoryBytes) },
            cpus: settings.executorCPUs,
            cpuQuota: isolation?.settings.hardCPULimits == true ? settings.executorCPUs : nil)
        configuration.logRotation = settings.logRotation(overriding: logRotation)
        configuration.maximumHeldMiniTaskBytes = settings.miniTaskHeldBytes
        let pool = WorkerPool(configuration: configuration)
        self.pool = pool
        logger.info(
            "worker pool started",
            metadata: [
                "program": "\(program)", "mode": "\(settings.coarse ? "coarse" : "fine")", "cores": "\(settings.cores)",
            ])
        hosted.add { await pool.run() }
        return pool
    }

    /// SHUTDOWN: workers get their input closed and are killed after the grace period.
    public func stop() async {
        stopping = true
        await pool?.shutdown()
        hosted.finish()
    }
}
