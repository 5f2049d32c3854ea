/// Everything that can stop the harness while it prepares or drives a job (a job file it cannot
/// read is a `JobFileError`). A task that ends differently from what the job expects is not an
/// error: it is a failed check in the report.
public struct HarnessError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case executorNotStarted
        case packageNotServed
        case stepFailed
        case ioFailed
    }

    private let code: Code
    /// What went wrong, naming the file, key, path or step involved.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The executor binary could not be started.
    static func executorNotStarted(_ detail: String) -> Self { Self(.executorNotStarted, detail) }

    /// The package could not be prepared or served.
    static func packageNotServed(_ detail: String) -> Self { Self(.packageNotServed, detail) }

    /// A step of the job could not be carried out (e.g. the local agent refused it).
    static func stepFailed(_ detail: String) -> Self { Self(.stepFailed, detail) }

    /// A file the harness writes or reads could not be.
    static func ioFailed(_ detail: String) -> Self { Self(.ioFailed, detail) }

    public var description: String {
        switch code {
        case .executorNotStarted: "cannot start the executor: \(detail)"
        case .packageNotServed: "cannot serve the package: \(detail)"
        case .stepFailed: "job step failed: \(detail)"
        case .ioFailed: detail
        }
    }
}
