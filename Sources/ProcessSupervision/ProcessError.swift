import SystemSupport
/// Failures to start or control a child process.
public struct ProcessError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable {
        case spawnFailed
        case systemCallFailed
    }

    private let code: Code
    public let errno: Int32
    public let detail: String

    static func spawnFailed(_ executable: String, errno: Int32) -> Self {
        Self(code: .spawnFailed, errno: errno, detail: executable)
    }

    static func systemCall(_ name: String, errno: Int32) -> Self {
        Self(code: .systemCallFailed, errno: errno, detail: name)
    }

    public var isSpawnFailure: Bool { code == .spawnFailed }

    public var description: String {
        switch code {
        case .spawnFailed: "cannot start '\(detail)': \(errnoText(errno))"
        case .systemCallFailed: "\(detail) failed: \(errnoText(errno))"
        }
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
