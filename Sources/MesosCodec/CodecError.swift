/// Everything that can go wrong turning bytes from the wire into Mesos messages, or back.
public struct CodecError: Error, Hashable, Sendable, CustomStringConvertible {
    private enum Code: Hashable, Sendable {
        case malformedRecordLength
        case recordTooLarge
        case truncatedRecord
        case malformedProtobuf
        case malformedJSON
        case missingRequiredFields
        case unsupportedContentType
    }

    private let code: Code
    /// Details a person can act on: the offending bytes, the limit, the parser's complaint.
    public let detail: String

    private init(_ code: Code, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// A RecordIO length prefix that is not a plain decimal number followed by a newline.
    public static func malformedRecordLength(_ detail: String) -> Self { Self(.malformedRecordLength, detail) }
    /// A RecordIO record announces more bytes than the configured maximum.
    public static func recordTooLarge(length: UInt64, limit: Int) -> Self {
        Self(.recordTooLarge, "record of \(length) bytes exceeds the limit of \(limit) bytes")
    }
    /// The stream ended in the middle of a record.
    public static func truncatedRecord(_ detail: String) -> Self { Self(.truncatedRecord, detail) }
    /// Bytes that do not parse as the expected protobuf message.
    public static func malformedProtobuf(_ detail: String) -> Self { Self(.malformedProtobuf, detail) }
    /// Text that is not JSON, or JSON that does not map onto the expected message.
    public static func malformedJSON(_ detail: String) -> Self { Self(.malformedJSON, detail) }
    /// A message that parsed but lacks proto2 `required` fields.
    public static func missingRequiredFields(_ detail: String) -> Self { Self(.missingRequiredFields, detail) }
    /// A Content-Type that is neither `application/x-protobuf` nor `application/json`.
    public static func unsupportedContentType(_ detail: String) -> Self { Self(.unsupportedContentType, detail) }

    public var isMalformedRecordLength: Bool { code == .malformedRecordLength }
    public var isRecordTooLarge: Bool { code == .recordTooLarge }
    public var isTruncatedRecord: Bool { code == .truncatedRecord }
    public var isMalformedProtobuf: Bool { code == .malformedProtobuf }
    public var isMalformedJSON: Bool { code == .malformedJSON }
    public var isMissingRequiredFields: Bool { code == .missingRequiredFields }

    public var description: String {
        switch code {
        case .malformedRecordLength: "malformed RecordIO length: \(detail)"
        case .recordTooLarge: "RecordIO \(detail)"
        case .truncatedRecord: "stream ended inside a RecordIO record: \(detail)"
        case .malformedProtobuf: "malformed protobuf: \(detail)"
        case .malformedJSON: "malformed JSON: \(detail)"
        case .missingRequiredFields: "missing required fields: \(detail)"
        case .unsupportedContentType: "unsupported content type: \(detail)"
        }
    }
}
