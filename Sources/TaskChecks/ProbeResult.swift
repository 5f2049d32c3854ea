public import MesosProto

/// What one attempt saw.
public enum ProbeResult: Sendable, Equatable {
    /// The command ran to completion with this exit code.
    case command(exitCode: Int32)
    /// The server answered with this status (after redirects).
    case http(statusCode: UInt32)
    /// Whether the TCP handshake succeeded.
    case tcp(succeeded: Bool)
    /// No result: timed out, could not be started, ended by a signal, no HTTP answer.
    case error(String)

    /// Whether a health check counts this as healthy: exit 0, HTTP 200–399, connected.
    public var isHealthy: Bool {
        switch self {
        case .command(let code): code == 0
        case .http(let status): (200..<400).contains(status)
        case .tcp(let succeeded): succeeded
        case .error: false
        }
    }

    /// Short text for messages: `exit code 1`, `HTTP 500`, `connection refused`, `timed out after 1s`.
    public var text: String {
        switch self {
        case .command(let code): "exit code \(code)"
        case .http(let status): "HTTP status \(status)"
        case .tcp(let succeeded): succeeded ? "connected" : "connection failed"
        case .error(let why): why
        }
    }

    /// The `CheckStatusInfo` of a general check: the result, or the empty status of `type` for an error.
    public func checkStatus(type: Mesos_V1_CheckInfo.TypeEnum) -> Mesos_V1_CheckStatusInfo {
        var status = CheckStatus.empty(type)
        switch self {
        case .command(let code) where type == .command: status.command.exitCode = code
        case .http(let code) where type == .http: status.http.statusCode = code
        case .tcp(let succeeded) where type == .tcp: status.tcp.succeeded = succeeded
        default: break
        }
        return status
    }
}

/// Helpers for `CheckStatusInfo`.
public enum CheckStatus {
    /// The "empty" result: `type` set and the matching sub-message present but unset.
    public static func empty(_ type: Mesos_V1_CheckInfo.TypeEnum) -> Mesos_V1_CheckStatusInfo {
        var status = Mesos_V1_CheckStatusInfo()
        status.type = type
        switch type {
        case .command: status.command = .init()
        case .http: status.http = .init()
        case .tcp: status.tcp = .init()
        case .unknown: break
        }
        return status
    }
}
