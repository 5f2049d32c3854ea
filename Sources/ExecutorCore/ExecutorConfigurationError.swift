/// A variable of the executor's environment that is missing or cannot be understood.
public struct ExecutorConfigurationError: Error, Sendable, CustomStringConvertible {
    public let variable: String
    public let value: String?
    public let expected: String

    static func missing(_ variable: EnvironmentVariable, expected: String) -> Self {
        Self(variable: variable.name, value: nil, expected: expected)
    }
    static func malformed(_ variable: EnvironmentVariable, _ value: String, expected: String) -> Self {
        Self(variable: variable.name, value: value, expected: expected)
    }

    /// One line a person can act on, e.g. `MESOS_CHECKPOINT='yes' is malformed: expected "1" or "0"`.
    public var description: String {
        if let value {
            return "\(variable)='\(value)' is malformed: expected \(expected)"
        }
        return "\(variable) is not set: expected \(expected)"
    }
}
