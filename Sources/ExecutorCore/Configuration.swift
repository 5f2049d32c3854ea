public import AgentConnection
public import MesosCodec
public import ProcessSupervision

/// Everything the executor reads from the environment the agent gives it (spec §6),
/// read once at start-up.
public struct Configuration: Sendable {
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

    /// The variables the executor reads, for `--help`.
    public static let documentedVariables: [(name: String, meaning: String)] = [
        ("MESOS_FRAMEWORK_ID", "framework id (required)"),
        ("MESOS_EXECUTOR_ID", "executor id (required)"),
        ("MESOS_AGENT_ENDPOINT", "agent ip:port (required unless MESOS_SLAVE_PID or MESOS_DOMAIN_SOCKET is set)"),
        ("MESOS_SLAVE_PID", "agent libprocess pid, e.g. slave(1)@10.0.0.5:5051 (fallback for the endpoint)"),
        ("MESOS_DOMAIN_SOCKET", "unix socket of the agent's executor API (used instead of TCP when set)"),
        ("MESOS_SANDBOX", "sandbox directory (default: MESOS_DIRECTORY, then the working directory)"),
        ("MESOS_DIRECTORY", "sandbox path on the host"),
        ("MESOS_SLAVE_ID", "agent id"),
        ("MESOS_CHECKPOINT", "\"1\" when the framework checkpoints (re-subscribe after agent restarts), else \"0\""),
        ("MESOS_RECOVERY_TIMEOUT", "how long to try re-subscribing, e.g. 15mins (required when checkpointing)"),
        (
            "MESOS_SUBSCRIPTION_BACKOFF_MAX",
            "max delay between re-subscribe attempts, e.g. 2secs (required when checkpointing)"
        ),
        ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "time from SHUTDOWN to forced kill, e.g. 5secs (default 5secs)"),
        ("MESOS_EXECUTOR_AUTHENTICATION_TOKEN", "bearer token sent on every call"),
        ("LIBPROCESS_SSL_ENABLED", "\"1\"/\"true\": talk https to the agent"),
        ("LIBPROCESS_SSL_VERIFY_CERT", "\"1\"/\"true\": verify the agent's certificate"),
        ("LIBPROCESS_SSL_CA_FILE", "CA bundle for verifying the agent"),
        ("SPARK_MESOS_EXECUTOR_ENCODING", "\"protobuf\" (default) or \"json\" for calls and events"),
        (
            "SPARK_MESOS_EXECUTOR_CGROUPS",
            "\"auto\" (default): a cgroup per task and worker where possible; \"off\": none"
        ),
        (
            "SPARK_MESOS_EXECUTOR_CGROUP_PARENT",
            "cgroup path to nest the executor's cgroup under (default: its own cgroup)"
        ),
        (
            "SPARK_MESOS_EXECUTOR_CGROUPS_ENABLE_CFS",
            "\"1\": cap CPU time at the task's cpus (CFS quota); default \"0\""
        ),
        (
            "SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE",
            "largest stdout/stderr file of a task or worker before it is rotated, e.g. 10MB (default 10MB, at least 4KB)"
        ),
        (
            "SPARK_MESOS_EXECUTOR_LOG_MAX_FILES",
            "rotated files kept per stream (stdout.1 newest … stdout.N), 0 keeps none (default 5)"
        ),
    ]

    /// Reads the configuration from `environment`. `workingDirectory` is the sandbox fallback.
    public init(environment: [String: String], workingDirectory: String) throws(ConfigurationError) {
        func required(_ name: String, _ expected: String) throws(ConfigurationError) -> String {
            guard let value = environment[name], !value.isEmpty else { throw .missing(name, expected: expected) }
            return value
        }
        func duration(_ name: String, default fallback: Duration?) throws(ConfigurationError) -> Duration {
            let expected = "a Mesos duration such as 5secs or 15mins"
            guard let text = environment[name], !text.isEmpty else {
                if let fallback { return fallback }
                throw .missing(name, expected: expected)
            }
            guard let value = MesosDuration.parse(text) else { throw .malformed(name, text, expected: expected) }
            return value
        }
        func flag(_ name: String) throws(ConfigurationError) -> Bool {
            guard let text = environment[name], !text.isEmpty else { return false }
            switch text.lowercased() {
            case "1", "true": return true
            case "0", "false": return false
            default: throw .malformed(name, text, expected: "\"1\" or \"0\"")
            }
        }

        frameworkID = try required("MESOS_FRAMEWORK_ID", "the framework id")
        executorID = try required("MESOS_EXECUTOR_ID", "the executor id")
        agentID = environment["MESOS_SLAVE_ID"]

        let secure = try flag("LIBPROCESS_SSL_ENABLED")
        verifyCertificate = try flag("LIBPROCESS_SSL_VERIFY_CERT")
        trustedCAFile = environment["LIBPROCESS_SSL_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        if let socket = environment["MESOS_DOMAIN_SOCKET"], !socket.isEmpty {
            endpoint = AgentEndpoint(hostAndPort: "localhost", transport: .unixSocket(socket))
        } else {
            let hostAndPort: String
            if let value = environment["MESOS_AGENT_ENDPOINT"], !value.isEmpty {
                guard Self.isHostAndPort(value) else {
                    throw .malformed("MESOS_AGENT_ENDPOINT", value, expected: "ip:port, e.g. 10.0.0.5:5051")
                }
                hostAndPort = value
            } else if let pid = environment["MESOS_SLAVE_PID"], !pid.isEmpty {
                guard let at = pid.lastIndex(of: "@"), Self.isHostAndPort(String(pid[pid.index(after: at)...])) else {
                    throw .malformed("MESOS_SLAVE_PID", pid, expected: "id@ip:port, e.g. slave(1)@10.0.0.5:5051")
                }
                hostAndPort = String(pid[pid.index(after: at)...])
            } else {
                throw .missing("MESOS_AGENT_ENDPOINT", expected: "the agent's ip:port")
            }
            endpoint = AgentEndpoint(hostAndPort: hostAndPort, transport: secure ? .https : .http)
        }

        directory = environment["MESOS_DIRECTORY"].flatMap { $0.isEmpty ? nil : $0 }
        sandbox = environment["MESOS_SANDBOX"].flatMap { $0.isEmpty ? nil : $0 } ?? directory ?? workingDirectory

        if let text = environment["MESOS_CHECKPOINT"], !text.isEmpty {
            // The agent writes "1" or "0"; the library compares with "1". Anything else is a mistake
            // worth stopping for, never silently "true".
            switch text {
            case "1": checkpoint = true
            case "0": checkpoint = false
            default: throw .malformed("MESOS_CHECKPOINT", text, expected: "\"1\" or \"0\"")
            }
        } else {
            checkpoint = false
        }
        recoveryTimeout = try duration("MESOS_RECOVERY_TIMEOUT", default: checkpoint ? nil : .seconds(15 * 60))
        subscriptionBackoffMax = try duration("MESOS_SUBSCRIPTION_BACKOFF_MAX", default: checkpoint ? nil : .seconds(2))
        shutdownGracePeriod = try duration("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", default: .seconds(5))
        authenticationToken = environment["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }

        if let text = environment["SPARK_MESOS_EXECUTOR_ENCODING"], !text.isEmpty {
            guard let encoding = WireEncoding(rawValue: text) else {
                throw .malformed("SPARK_MESOS_EXECUTOR_ENCODING", text, expected: "\"protobuf\" or \"json\"")
            }
            self.encoding = encoding
        } else {
            encoding = .protobuf
        }
        switch environment["SPARK_MESOS_EXECUTOR_CGROUPS"] ?? "" {
        case "", "auto": cgroupsEnabled = true
        case "off": cgroupsEnabled = false
        case let other: throw .malformed("SPARK_MESOS_EXECUTOR_CGROUPS", other, expected: "\"auto\" or \"off\"")
        }
        if let parent = environment["SPARK_MESOS_EXECUTOR_CGROUP_PARENT"], !parent.isEmpty {
            guard parent.hasPrefix("/"), !parent.split(separator: "/").contains(where: { $0 == ".." || $0 == "." })
            else {
                throw .malformed(
                    "SPARK_MESOS_EXECUTOR_CGROUP_PARENT", parent, expected: "an absolute cgroup path such as /spark")
            }
            cgroupParent = parent
        } else {
            cgroupParent = nil
        }
        cgroupsEnableCFS = try flag("SPARK_MESOS_EXECUTOR_CGROUPS_ENABLE_CFS")
        logRotation = LogRotation.default
        if let text = environment["SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE"], !text.isEmpty {
            guard let bytes = LogRotation.parseSize(text), bytes >= LogRotation.minimumFileBytes else {
                throw .malformed(
                    "SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE", text, expected: "a size of at least 4KB, such as 10MB")
            }
            logRotation.maximumFileBytes = bytes
        }
        if let text = environment["SPARK_MESOS_EXECUTOR_LOG_MAX_FILES"], !text.isEmpty {
            guard let count = Int(text), count >= 0, count <= 1000 else {
                throw .malformed("SPARK_MESOS_EXECUTOR_LOG_MAX_FILES", text, expected: "a count from 0 to 1000")
            }
            logRotation.rotatedFiles = count
        }
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
