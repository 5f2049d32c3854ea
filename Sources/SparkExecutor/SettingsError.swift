/// A Spark property or executor argument that cannot be used.
public struct SettingsError: Error, Sendable, Equatable, CustomStringConvertible {
    public let key: String
    public let value: String
    public let expected: String

    /// e.g. `spark.executor.cores='two' is malformed: expected a whole number of at least 1`.
    public var description: String { "\(key)='\(value)' is malformed: expected \(expected)" }
}
