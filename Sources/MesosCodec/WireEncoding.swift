public import SwiftProtobuf

/// The two encodings the Mesos v1 executor API speaks. The agent accepts a request
/// Content-Type only when it is exactly one of these strings (no parameters).
public enum WireEncoding: String, Sendable, CaseIterable, CustomStringConvertible {
    case protobuf
    case json

    /// The exact media type for `Content-Type` and `Accept`.
    public var contentType: String {
        switch self {
        case .protobuf: "application/x-protobuf"
        case .json: "application/json"
        }
    }

    /// The encoding whose media type is exactly `contentType`, or nil.
    public init?(contentType: String) {
        switch contentType {
        case "application/x-protobuf": self = .protobuf
        case "application/json": self = .json
        default: return nil
        }
    }

    public var description: String { contentType }

    /// Serializes `message` in this encoding.
    public func encode(_ message: some Message) throws -> [UInt8] {
        switch self {
        case .protobuf:
            do {
                return try message.serializedBytes()
            } catch {
                throw CodecError.missingRequiredFields("\(type(of: message)): \(error)")
            }
        case .json:
            return try MesosJSON.encode(message)
        }
    }

    /// Parses `bytes` as `M` in this encoding and checks proto2 required fields.
    public func decode<M: Message>(_ type: M.Type, from bytes: some Collection<UInt8>) throws -> M {
        switch self {
        case .protobuf:
            let message: M
            do {
                message = try M(serializedBytes: Array(bytes), partial: true)
            } catch {
                throw CodecError.malformedProtobuf("not a valid \(M.protoMessageName): \(error)")
            }
            guard message.isInitialized else {
                throw CodecError.missingRequiredFields("\(M.protoMessageName) lacks required fields")
            }
            return message
        case .json:
            return try MesosJSON.decode(M.self, from: bytes)
        }
    }
}
