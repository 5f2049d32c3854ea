/// A worker pipe message that cannot be framed or decoded.
public struct WireError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case malformed
        case framing
        case frameTooLarge
    }

    private let code: Code
    /// What was wrong, for a person to read.
    public let detail: String

    static func malformed(_ detail: String) -> Self { Self(code: .malformed, detail: detail) }
    static func framing(_ detail: String) -> Self { Self(code: .framing, detail: detail) }
    static func frameTooLarge(_ length: UInt64, limit: Int) -> Self {
        Self(code: .frameTooLarge, detail: "frame of \(length) bytes exceeds the limit of \(limit) bytes")
    }

    public var description: String {
        switch code {
        case .malformed: "malformed worker message: \(detail)"
        case .framing: "malformed RecordIO framing: \(detail)"
        case .frameTooLarge: detail
        }
    }
}
