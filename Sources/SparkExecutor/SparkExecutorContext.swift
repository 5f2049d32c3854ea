public import ExecutorCore
public import Logging
public import MesosProto
public import PackageFetch

/// What the executor learns at SUBSCRIBED and shares with every task: its settings and its package.
public actor SparkExecutorContext {
    /// Settings and the package gate, once SUBSCRIBED arrived.
    public struct Prepared: Sendable {
        public let settings: ExecutorSettings
        /// nil when there is nothing to fetch (no URI, no executor home).
        public let package: PackageGate?
    }

    private let commandLine: [String: String]
    private let environment: [String: String]
    private let sandbox: String
    private let fetcher: PackageFetcher
    private let logger: Logger
    private var prepared: Result<Prepared, SettingsError>?

    public init(
        commandLine: [String: String], environment: [String: String], sandbox: String, fetcher: PackageFetcher,
        logger: Logger
    ) {
        self.commandLine = commandLine
        self.environment = environment
        self.sandbox = sandbox
        self.fetcher = fetcher
        self.logger = logger
    }

    /// Reads the settings from the ExecutorInfo and returns the work that fetches the package
    /// eagerly, so the download overlaps task scheduling. Later calls (re-subscriptions) change nothing.
    public func configure(_ executorInfo: Mesos_V1_ExecutorInfo) -> (@Sendable () async -> Void)? {
        guard prepared == nil else { return nil }
        let settings: ExecutorSettings
        do {
            settings = try ExecutorSettings(executorInfo: executorInfo, commandLine: commandLine, environment: environment)
        } catch {
            logger.error("executor configuration is invalid; every task will fail", metadata: ["error": "\(error)"])
            prepared = .failure(error)
            return nil
        }
        if !settings.unknownKeys.isEmpty {
            logger.debug("ignoring properties this executor does not use", metadata: ["keys": "\(settings.unknownKeys)"])
        }
        var request: FetchRequest
        do {
            request = try FetchRequest(sparkProperties: settings.properties, environment: environment)
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
            return nil
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
            } catch {
                logger.error("package fetch failed; waiting tasks fail, the next task retries", metadata: ["error": "\(error)"])
            }
        }
    }

    /// The settings and package gate, or the configuration error every task fails with.
    public func current() -> Result<Prepared, SettingsError>? { prepared }
}
