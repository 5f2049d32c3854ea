/// A call the agent did not accept, or a connection that failed.
public struct AgentError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case unexpectedStatus(Int)
        case connectionFailed
        case streamEnded
        case streamFailed
        case invalidCall
    }

    private let code: Code
    /// The call type the error belongs to (SUBSCRIBE, UPDATE, …).
    public let call: String
    private let source: Detail

    /// A text, or an error described only when asked for: `String(describing:)` reflects on the
    /// error, and the first reflection of a type costs a dozen scans of the binary's conformance
    /// records (~0.7 ms of CPU for the `CancellationError` every executor's event stream ends with
    /// at shutdown).
    private enum Detail: Sendable {
        case text(String)
        case error(any Error)
    }

    /// The agent's answer body or the underlying error text.
    public var detail: String {
        switch source {
        case .text(let text): text
        case .error(let error): String(describing: error)
        }
    }

    static func unexpectedStatus(_ status: Int, call: String, body: String) -> Self {
        Self(code: .unexpectedStatus(status), call: call, source: .text(body))
    }
    static func connectionFailed(call: String, _ error: any Error) -> Self {
        Self(code: .connectionFailed, call: call, source: .error(error))
    }
    public static func streamEnded(cleanly: Bool) -> Self {
        Self(
            code: .streamEnded, call: "SUBSCRIBE",
            source: .text(cleanly ? "the agent closed the event stream" : "the event stream broke off (agent gone?)"))
    }
    static func streamFailed(_ error: any Error) -> Self {
        Self(code: .streamFailed, call: "SUBSCRIBE", source: .error(error))
    }
    static func invalidCall(call: String, _ detail: String) -> Self {
        Self(code: .invalidCall, call: call, source: .text(detail))
    }

    /// The HTTP status when the agent answered with an unexpected one.
    public var status: Int? {
        if case .unexpectedStatus(let status) = code { return status }
        return nil
    }

    /// True when trying the same call again later can succeed: the agent was unreachable, or
    /// answered 503 (recovering) or 404 (routes not installed yet).
    public var isRetryable: Bool {
        switch code {
        case .connectionFailed, .streamEnded, .streamFailed: true
        case .unexpectedStatus(let status): status == 503 || status == 404
        case .invalidCall: false
        }
    }

    public var description: String {
        switch code {
        case .unexpectedStatus(let status):
            let body = detail.isEmpty ? "" : ": \(detail)"
            return "agent answered \(status) to \(call)\(body)"
        case .connectionFailed: return "\(call) could not reach the agent: \(detail)"
        case .streamEnded, .streamFailed: return "event stream lost: \(detail)"
        case .invalidCall: return "refusing to send an invalid \(call): \(detail)"
        }
    }
}
