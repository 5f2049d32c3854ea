/// Why the pool could not be set up or a worker could not be used.
public struct WorkerPoolError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case programNotSet
        case relativeProgramWithoutRoot
        case launchFailed
        case sandbox
        case shuttingDown
    }

    private let code: Code
    /// What went wrong, for a person to act on.
    public let detail: String

    static let programNotSet = Self(
        code: .programNotSet,
        detail: "spark.mesos.executor.worker is not set: closure tasks need a worker program")
    static func relativeProgramWithoutRoot(_ path: String) -> Self {
        Self(
            code: .relativeProgramWithoutRoot,
            detail:
                "spark.mesos.executor.worker '\(path)' is relative, but there is no package root (SPARK_HOME) to resolve it against"
        )
    }
    static func launchFailed(_ detail: String) -> Self { Self(code: .launchFailed, detail: detail) }
    static func sandbox(_ detail: String) -> Self { Self(code: .sandbox, detail: detail) }
    /// The executor is shutting down: no new workers start.
    public static let shuttingDown = Self(code: .shuttingDown, detail: "the executor is shutting down")

    public var description: String { detail }
}
