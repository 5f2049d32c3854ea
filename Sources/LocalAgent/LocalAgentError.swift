/// Everything that can go wrong scripting a ``LocalAgent``.
public struct LocalAgentError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case timedOut
        case invalidTask
        case invalidState
    }

    private let code: Code
    /// What happened, with enough context to act on it.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// ``LocalAgent/waitUntil(_:timeout:_:)`` gave up; `detail` describes what the agent saw.
    public static func timedOut(_ detail: String) -> Self { Self(.timedOut, detail) }
    /// A TaskInfo or TaskGroupInfo the agent could not send (e.g. lacking required fields).
    public static func invalidTask(_ detail: String) -> Self { Self(.invalidTask, detail) }
    /// The agent cannot do that now, e.g. come back while it is already up.
    public static func invalidState(_ detail: String) -> Self { Self(.invalidState, detail) }

    /// Whether this is ``timedOut(_:)``.
    public var isTimedOut: Bool { code == .timedOut }
    /// Whether this is ``invalidTask(_:)``.
    public var isInvalidTask: Bool { code == .invalidTask }
    /// Whether this is ``invalidState(_:)``.
    public var isInvalidState: Bool { code == .invalidState }

    public var description: String {
        switch code {
        case .timedOut: "timed out: \(detail)"
        case .invalidTask: "invalid task: \(detail)"
        case .invalidState: "local agent cannot do that now: \(detail)"
        }
    }
}
