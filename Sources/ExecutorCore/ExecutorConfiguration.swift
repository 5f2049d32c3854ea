public import AgentConnection
public import MesosCodec
public import ProcessSupervision

/// Everything the executor reads from its environment (what the agent sets, and the executor's
/// own variables), read once at start-up; ``EnvironmentVariable`` lists them.
public struct ExecutorConfiguration: Sendable {
    public var frameworkID: String
    public var executorID: String
    public var agentID: String?
    public var endpoint: AgentEndpoint
    /// The sandbox as the executor sees it (`MESOS_SANDBOX`, else `MESOS_DIRECTORY`).
    public var sandbox: String
    /// `MESOS_DIRECTORY`, the sandbox path on the host.
    public var directory: String?
    public var checkpoint: Bool
    /// How long to keep trying to re-subscribe after losing the agent (checkpointing only).
    public var recoveryTimeout: Duration
    /// Upper bound of the random delay between re-subscription attempts (checkpointing only).
    public var subscriptionBackoffMax: Duration
    /// Time between SHUTDOWN and the agent destroying the container.
    public var shutdownGracePeriod: Duration
    public var authenticationToken: String?
    public var encoding: WireEncoding
    public var verifyCertificate: Bool
    public var trustedCAFile: String?
    /// Cgroups for tasks and workers (`SPARK_MESOS_EXECUTOR_CGROUPS`): on unless turned off.
    public var cgroupsEnabled: Bool
    /// Nest the executor's cgroup under this cgroup path instead of its own (`SPARK_MESOS_EXECUTOR_CGROUP_PARENT`).
    public var cgroupParent: String?
    /// CFS quotas from `cpus` (`SPARK_MESOS_EXECUTOR_CGROUPS_ENABLE_CFS`), like an agent's `--cgroups_enable_cfs`.
    public var cgroupsEnableCFS: Bool
    /// How tasks' and workers' stdout/stderr are bounded (`SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE`,
    /// `SPARK_MESOS_EXECUTOR_LOG_MAX_FILES`); Spark properties may override it per application.
    public var logRotation: LogRotation
    /// Standing in for Mesos's command executor (`MESOS_HTTP_COMMAND_EXECUTOR=1`): the agent fetched
    /// the task's URIs already, and the executor ends with its one task.
    public var standsInForCommandExecutor: Bool
    /// Whether the executor gives back the pages of its own code when idle (`SPARK_MESOS_EXECUTOR_IDLE_RECLAIM`).
    public var releasesCodeWhenIdle: Bool
    /// The package cache directory as configured (`SPARK_MESOS_EXECUTOR_CACHE_DIR`); nil: the default.
    public var cacheDirectory: String?
    /// Free space every package download leaves, in bytes (`SPARK_MESOS_EXECUTOR_FETCH_MIN_FREE_BYTES`);
    /// nil: the fetcher's standard reserve.
    public var fetchMinimumFreeBytes: Int64?
    /// The Spark package when no Spark property names one (`SPARK_EXECUTOR_URI`).
    public var sparkExecutorURI: String?
    /// Where `bin/hadoop` is, for hdfs:// and s3*:// URIs (`HADOOP_HOME`).
    public var hadoopHome: String?
    /// The executor's `PATH`, searched for `hadoop` when `hadoopHome` is nil.
    public var searchPath: String?

    /// Reads the configuration from `environment`, every variable through ``EnvironmentVariable``.
    /// `workingDirectory` is the sandbox fallback.
    public init(environment: [String: String], workingDirectory: String) throws(ExecutorConfigurationError) {
        let environment = VariableReader(environment)
        func required(_ variable: EnvironmentVariable, _ expected: String) throws(ExecutorConfigurationError) -> String
        {
            guard let value = environment[variable], !value.isEmpty else {
                throw .missing(variable, expected: expected)
            }
            return value
        }
        func duration(_ variable: EnvironmentVariable, default fallback: Duration?) throws(ExecutorConfigurationError)
            -> Duration
        {
            let expected = "a Mesos duration such as 5secs or 15mins"
            guard let text = environment[variable], !text.isEmpty else {
                if let fallback { return fallback }
                throw .missing(variable, expected: expected)
            }
            guard let value = MesosDuration.parse(text) else {
                throw .malformed(variable, text, expected: expected)
            }
            return value
        }
        func flag(_ variable: EnvironmentVariable) throws(ExecutorConfigurationError) -> Bool {
            guard let text = environment[variable], !text.isEmpty else { return false }
            switch text.lowercased() {
            case "1", "true": return true
            case "0", "false": return false
            default: throw .malformed(variable, text, expected: "\"1\" or \"0\"")
            }
        }

        frameworkID = try required(.frameworkID, "the framework id")
        executorID = try required(.executorID, "the executor id")
        agentID = environment[.agentID]

        let secure = try flag(.sslEnabled)
        verifyCertificate = try flag(.sslVerifyCertificate)
        trustedCAFile = environment[.sslCAFile].flatMap { $0.isEmpty ? nil : $0 }
        if let socket = environment[.domainSocket], !socket.isEmpty {
            endpoint = AgentEndpoint(hostAndPort: "localhost", transport: .unixSocket(socket))
        } else {
            let hostAndPort: String
            if let value = environment[.agentEndpoint], !value.isEmpty {
                guard Self.isHostAndPort(value) else {
                    throw .malformed(.agentEndpoint, value, expected: "ip:port, e.g. 10.0.0.5:5051")
                }
                hostAndPort = value
            } else if let pid = environment[.agentPID], !pid.isEmpty {
                guard let at = pid.lastIndex(of: "@"), Self.isHostAndPort(String(pid[pid.index(after: at)...])) else {
                    throw .malformed(.agentPID, pid, expected: "id@ip:port, e.g. slave(1)@10.0.0.5:5051")
                }
                hostAndPort = String(pid[pid.index(after: at)...])
            } else {
                throw .missing(.agentEndpoint, expected: "the agent's ip:port")
            }
            endpoint = AgentEndpoint(hostAndPort: hostAndPort, transport: secure ? .https : .http)
        }

        directory = environment[.directory].flatMap { $0.isEmpty ? nil : $0 }
        sandbox = environment[.sandbox].flatMap { $0.isEmpty ? nil : $0 } ?? directory ?? workingDirectory

        if let text = environment[.checkpoint], !text.isEmpty {
            // The agent writes "1" or "0"; the library compares with "1". Anything else is a mistake
            // worth stopping for, never silently "true".
            switch text {
            case "1": checkpoint = true
            case "0": checkpoint = false
            default: throw .malformed(.checkpoint, text, expected: "\"1\" or \"0\"")
            }
        } else {
            checkpoint = false
        }
        recoveryTimeout = try duration(.recoveryTimeout, default: checkpoint ? nil : .seconds(15 * 60))
        subscriptionBackoffMax = try duration(.subscriptionBackoffMax, default: checkpoint ? nil : .seconds(2))
        shutdownGracePeriod = try duration(.shutdownGracePeriod, default: .seconds(5))
        authenticationToken = environment[.authenticationToken].flatMap { $0.isEmpty ? nil : $0 }

        if let text = environment[.encoding], !text.isEmpty {
            guard let encoding = WireEncoding(rawValue: text) else {
                throw .malformed(.encoding, text, expected: "\"protobuf\" or \"json\"")
            }
            self.encoding = encoding
        } else {
            encoding = .protobuf
        }
        switch environment[.cgroups] ?? "" {
        case "", "auto": cgroupsEnabled = true
        case "off": cgroupsEnabled = false
        case let other: throw .malformed(.cgroups, other, expected: "\"auto\" or \"off\"")
        }
        if let parent = environment[.cgroupParent], !parent.isEmpty {
            guard parent.hasPrefix("/"), !parent.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
            else {
                throw .malformed(
                    .cgroupParent, parent, expected: "an absolute cgroup path such as /spark")
            }
            cgroupParent = parent
        } else {
            cgroupParent = nil
        }
        cgroupsEnableCFS = try flag(.cgroupsEnableCFS)
        logRotation = LogRotation.default
        if let text = environment[.logMaxSize], !text.isEmpty {
            guard let bytes = LogRotation.parseSize(text), bytes >= LogRotation.minimumFileBytes else {
                throw .malformed(
                    .logMaxSize, text, expected: "a size of at least 4KB, such as 10MB")
            }
            logRotation.maximumFileBytes = bytes
        }
        if let text = environment[.logMaxFiles], !text.isEmpty {
            guard let count = Int(text), count >= 0, count <= 1000 else {
                throw .malformed(.logMaxFiles, text, expected: "a count from 0 to 1000")
            }
            logRotation.rotatedFiles = count
        }

        standsInForCommandExecutor = environment[.commandExecutor] == "1"
        switch environment[.idleReclaim] {
        case nil, "1": releasesCodeWhenIdle = true
        case "0": releasesCodeWhenIdle = false
        case let other?: throw .malformed(.idleReclaim, other, expected: "\"1\" or \"0\"")
        }
        cacheDirectory = environment[.cacheDirectory]
        if let text = environment[.fetchMinimumFreeBytes] {
            guard let bytes = Int64(text), bytes >= 0 else {
                throw .malformed(.fetchMinimumFreeBytes, text, expected: "a whole number of bytes (0 keeps no reserve)")
            }
            fetchMinimumFreeBytes = bytes
        } else {
            fetchMinimumFreeBytes = nil
        }
        sparkExecutorURI = environment[.sparkExecutorURI].flatMap { $0.isEmpty ? nil : $0 }
        hadoopHome = environment[.hadoopHome].flatMap { $0.isEmpty ? nil : $0 }
        searchPath = environment[.path]
    }

    /// The agent client settings this configuration implies.
    public var agentClient: AgentClientConfiguration {
        AgentClientConfiguration(
            endpoint: endpoint, encoding: encoding, authenticationToken: authenticationToken,
            trustedCAFile: trustedCAFile, verifyCertificate: verifyCertificate)
    }

    private static func isHostAndPort(_ text: String) -> Bool {
        guard let colon = text.lastIndex(of: ":") else { return false }
        let host = text[..<colon]
        let port = text[text.index(after: colon)...]
        guard !host.isEmpty, let number = UInt16(port), number > 0 else { return false }
        return !host.contains(where: { $0.isWhitespace || $0 == "/" })
    }
}

/// The environment as `ExecutorConfiguration` may read it: only through the variables of the table.
private struct VariableReader {
    let environment: [String: String]

    init(_ environment: [String: String]) { self.environment = environment }

    subscript(_ variable: EnvironmentVariable) -> String? { environment[variable.name] }
}
