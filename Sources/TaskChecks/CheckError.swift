/// Why a `HealthCheck` or `CheckInfo` cannot be run. The text is the master's own validation
/// message, so an operator sees the same words whichever side refused the task.
public struct CheckError: Error, Sendable, Equatable, CustomStringConvertible {
    private enum Code: Sendable, Equatable {
        case invalid
    }

    private let code: Code
    /// What is wrong, e.g. `Expecting 'http' to be set for HTTP health check`.
    public let message: String

    static func invalid(_ message: String) -> CheckError { CheckError(code: .invalid, message: message) }

    public var description: String { message }
}
