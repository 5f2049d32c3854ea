/// Why a job file was refused: it cannot be read or is not JSON/YAML at all, or a key of it is
/// unknown or its value is not what is expected. The text names the file and the key path.
public struct JobFileError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case unreadable
        case invalid
    }

    private let code: Code
    /// What went wrong, naming the file and, for an invalid job, the key.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// The job file cannot be read or is not JSON/YAML at all.
    static func unreadableJob(_ file: String, _ why: String) -> Self { Self(.unreadable, "\(file): \(why)") }

    /// A key of the job file is unknown or its value is not what is expected.
    static func invalidJob(_ file: String, key: String, _ problem: String) -> Self {
        Self(.invalid, "\(file): \(key.isEmpty ? "(top level)" : key): \(problem)")
    }

    public var description: String {
        switch code {
        case .unreadable: "cannot read job file \(detail)"
        case .invalid: "invalid job file \(detail)"
        }
    }
}
