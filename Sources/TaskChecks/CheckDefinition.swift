public import MesosProto

#if canImport(Glibc)
    import Glibc
#endif

/// One `TaskInfo.health_check` or `TaskInfo.check`, validated, with Mesos's defaults applied.
public struct CheckDefinition: Sendable, Equatable {
    /// Health checks decide health and can kill; general checks only report what they saw.
    public enum Kind: Sendable, Equatable {
        case health
        case check
    }

    /// What one attempt does.
    public enum Probe: Sendable, Equatable {
        /// `sh -c value` (shell) or `value` with `arguments` as argv; with the check's own variables.
        case command(Mesos_V1_CommandInfo)
        /// GET `scheme://host:port path`.
        case http(scheme: String, port: Int, path: String, ipv6: Bool)
        /// A TCP connect to `host:port`.
        case tcp(port: Int, ipv6: Bool)

        /// `COMMAND`, `HTTP`, `TCP`: the type of the check's status.
        public var type: Mesos_V1_CheckInfo.TypeEnum {
            switch self {
            case .command: .command
            case .http: .http
            case .tcp: .tcp
            }
        }

    }

    public var kind: Kind
    public var probe: Probe
    /// Before the first attempt, from the moment checking starts.
    public var delay: Duration
    /// After each attempt ends (result, error or timeout) until the next begins.
    public var interval: Duration
    /// Per attempt; nil when `timeout_seconds` is 0 (no timeout).
    public var timeout: Duration?
    /// Counted failures in a row that kill the task (health checks only).
    public var consecutiveFailures: UInt32
    /// Failures before the first success and within this long of the start are ignored (health checks only).
    public var gracePeriod: Duration

    public init(
        kind: Kind, probe: Probe, delay: Duration, interval: Duration, timeout: Duration?,
        consecutiveFailures: UInt32 = 3, gracePeriod: Duration = .zero
    ) {
        self.kind = kind
        self.probe = probe
        self.delay = delay
        self.interval = interval
        self.timeout = timeout
        self.consecutiveFailures = consecutiveFailures
        self.gracePeriod = gracePeriod
    }

    /// A short name for messages: `HTTP health check`, `COMMAND check`.
    public var name: String {
        let type: String
        switch probe {
        case .command: type = "COMMAND"
        case .http(let scheme, _, _, _): type = scheme.uppercased()
        case .tcp: type = "TCP"
        }
        return "\(type) \(kind == .health ? "health check" : "check")"
    }

    /// A `HealthCheck` as Mesos's `validateHealthCheck` accepts it, plus what Mesos leaves
    /// unchecked and then mishandles: non-finite seconds and ports past 65535.
    public init(health: Mesos_V1_HealthCheck) throws(CheckError) {
        guard health.hasType else { throw .invalid("HealthCheck must specify 'type'") }
        let probe: Probe
        switch health.type {
        case .unknown:
            throw .invalid("'UNKNOWN' is not a valid health check type")
        case .command:
            guard health.hasCommand else { throw .invalid("Expecting 'command' to be set for COMMAND health check") }
            try Self.validate(command: health.command, what: "Command health check", owner: "Health check's")
            probe = .command(health.command)
        case .http:
            guard health.hasHTTP else { throw .invalid("Expecting 'http' to be set for HTTP health check") }
            let http = health.http
            if http.hasScheme, http.scheme != "http", http.scheme != "https" {
                throw .invalid("Unsupported HTTP health check scheme: '\(http.scheme)'")
            }
            if http.hasPath, !http.path.hasPrefix("/") {
                throw .invalid("The path '\(http.path)' of HTTP health check must start with '/'")
            }
            probe = .http(
                scheme: http.hasScheme ? http.scheme : "http", port: try Self.port(http.port, "HTTP health check"),
                path: http.path, ipv6: http.protocol == .ipv6)
        case .tcp:
            guard health.hasTcp else { throw .invalid("Expecting 'tcp' to be set for TCP health check") }
            probe = .tcp(port: try Self.port(health.tcp.port, "TCP health check"), ipv6: health.tcp.protocol == .ipv6)
        }
        self.init(
            kind: .health, probe: probe,
            delay: try Self.seconds(health.delaySeconds, "delay_seconds"),
            interval: try Self.seconds(health.intervalSeconds, "interval_seconds"),
            timeout: try Self.timeout(health.timeoutSeconds),
            consecutiveFailures: health.consecutiveFailures,
            gracePeriod: try Self.seconds(health.gracePeriodSeconds, "grace_period_seconds"))
    }

    /// A `CheckInfo` as Mesos's `validateCheckInfo` accepts it. General checks are always plain
    /// HTTP and IPv4.
    public init(check: Mesos_V1_CheckInfo) throws(CheckError) {
        guard check.hasType else { throw .invalid("CheckInfo must specify 'type'") }
        let probe: Probe
        switch check.type {
        case .unknown:
            throw .invalid("'UNKNOWN' is not a valid check type")
        case .command:
            guard check.hasCommand else { throw .invalid("Expecting 'command' to be set for COMMAND check") }
            try Self.validate(command: check.command.command, what: "Command check", owner: "Check's")
            probe = .command(check.command.command)
        case .http:
            guard check.hasHTTP else { throw .invalid("Expecting 'http' to be set for HTTP check") }
            if check.http.hasPath, !check.http.path.hasPrefix("/") {
                throw .invalid("The path '\(check.http.path)' of HTTP check must start with '/'")
            }
            probe = .http(
                scheme: "http", port: try Self.port(check.http.port, "HTTP check"), path: check.http.path, ipv6: false)
        case .tcp:
            guard check.hasTcp else { throw .invalid("Expecting 'tcp' to be set for TCP check") }
            probe = .tcp(port: try Self.port(check.tcp.port, "TCP check"), ipv6: false)
        }
        self.init(
            kind: .check, probe: probe,
            delay: try Self.seconds(check.delaySeconds, "delay_seconds"),
            interval: try Self.seconds(check.intervalSeconds, "interval_seconds"),
            timeout: try Self.timeout(check.timeoutSeconds))
    }

    private static func validate(command: Mesos_V1_CommandInfo, what: String, owner: String) throws(CheckError) {
        guard command.hasValue else {
            throw .invalid("\(what) must contain '\(command.shell ? "shell command" : "executable path")'")
        }
        guard !command.value.utf8.contains(0), !command.arguments.contains(where: { $0.utf8.contains(0) }) else {
            throw .invalid("\(what) holds a NUL character, which no program argument can carry")
        }
        for variable in command.environment.variables {
            let problem: String?
            switch variable.type {
            case .value:
                problem =
                    !variable.hasValue
                    ? "Environment variable '\(variable.name)' of type 'VALUE' must have a value set"
                    : variable.hasSecret
                        ? "Environment variable '\(variable.name)' of type 'VALUE' must not have a secret set" : nil
            case .secret:
                problem =
                    !variable.hasSecret
                    ? "Environment variable '\(variable.name)' of type 'SECRET' must have a secret set"
                    : variable.hasValue
                        ? "Environment variable '\(variable.name)' of type 'SECRET' must not have a value set" : nil
            case .unknown:
                problem = "Environment variable '\(variable.name)' of type 'UNKNOWN' is not allowed"
            }
            if let problem { throw .invalid("\(owner) `CommandInfo` is invalid: \(problem)") }
        }
    }

    private static func seconds(_ value: Double, _ field: String) throws(CheckError) -> Duration {
        guard value.isFinite else { throw .invalid("Expecting '\(field)' to be a finite number, got \(value)") }
        guard value >= 0 else { throw .invalid("Expecting '\(field)' to be non-negative") }
        return .nanoseconds(Int64((value * 1e9).rounded()))
    }

    private static func timeout(_ value: Double) throws(CheckError) -> Duration? {
        let timeout = try seconds(value, "timeout_seconds")
        return timeout == .zero ? nil : timeout
    }

    private static func port(_ value: UInt32, _ what: String) throws(CheckError) -> Int {
        guard (1...65535).contains(value) else { throw .invalid("The port \(value) of \(what) is not in 1-65535") }
        return Int(value)
    }
}
