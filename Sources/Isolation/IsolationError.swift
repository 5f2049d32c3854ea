import ProcessSupervision
import SystemSupport

/// Failures of the cgroup layer: a cgroup that cannot be created, configured, joined or removed.
public struct IsolationError: Error, Sendable, CustomStringConvertible {
    private enum Code: Sendable {
        case unavailable
        case systemCall
        case library
    }

    private let code: Code
    public let detail: String

    static func unavailable(_ why: String) -> Self { Self(code: .unavailable, detail: why) }

    static func systemCall(_ what: String, errno: Int32) -> Self {
        Self(code: .systemCall, detail: "\(what): \(errnoText(errno))")
    }

    static func library(_ what: String, code rc: Int32) -> Self {
        Self(code: .library, detail: "\(what): \(libcgroupDescription(rc))")
    }

    public var description: String {
        switch code {
        case .unavailable: "cgroups are not available: \(detail)"
        case .systemCall, .library: detail
        }
    }
}
