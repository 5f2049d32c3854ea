import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// How a payload was encoded: replies go back the same way.
public enum PayloadEncoding: Sendable, Hashable {
    case protobuf
    case json

    /// JSON starts with `{` (after optional whitespace); a protobuf message of ours never does,
    /// since `{` would be a group start of field 15.
    public static func detect(_ bytes: some Collection<UInt8>) -> PayloadEncoding {
        let first = bytes.first { ![0x20, 0x09, 0x0a, 0x0d].contains($0) }
        return first == UInt8(ascii: "{") ? .json : .protobuf
    }
}

/// Data from the framework that is not a valid closure or mini-task batch.
public struct WorkerProtocolError: Error, Sendable, Hashable, CustomStringConvertible {
    private enum Code: Sendable, Hashable {
        case unparseable
        case invalid
    }

    private let code: Code
    /// What is wrong, naming the field or the parser's complaint.
    public let detail: String

    static func unparseable(_ detail: String) -> Self { Self(code: .unparseable, detail: detail) }
    static func invalid(_ detail: String) -> Self { Self(code: .invalid, detail: detail) }

    public var description: String { detail }
}

extension Sparkmesos_Worker_V1_Closure {
    /// Parses `TaskInfo.data` of a closure task: the protobuf `Closure`, or its JSON form.
    public init(taskData bytes: [UInt8]) throws(WorkerProtocolError) {
        guard !bytes.isEmpty else { throw .invalid("TaskInfo.data is empty: a closure task needs a Closure message") }
        let encoding = PayloadEncoding.detect(bytes)
        do {
            switch encoding {
            case .json: self = try Self(jsonUTF8Bytes: bytes, options: Self.jsonOptions)
            case .protobuf: self = try Self(serializedBytes: bytes)
            }
        } catch {
            let form = encoding == .json ? "JSON" : "protobuf"
            throw .unparseable("TaskInfo.data is not a Closure (\(form), \(bytes.count) bytes): \(error)")
        }
        guard !function.isEmpty else { throw .invalid("TaskInfo.data holds a Closure without a function name") }
    }

    static let jsonOptions: JSONDecodingOptions = {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = false
        return options
    }()
}

extension Sparkmesos_Worker_V1_MiniTaskBatch {
    /// Parses a framework MESSAGE payload carrying mini-tasks; returns the batch and its encoding.
    public static func parse(_ bytes: [UInt8]) throws(WorkerProtocolError) -> (Self, PayloadEncoding) {
        let encoding = PayloadEncoding.detect(bytes)
        let batch: Self
        do {
            switch encoding {
            case .json: batch = try Self(jsonUTF8Bytes: bytes, options: Sparkmesos_Worker_V1_Closure.jsonOptions)
            case .protobuf: batch = try Self(serializedBytes: bytes)
            }
        } catch {
            let form = encoding == .json ? "JSON" : "protobuf"
            throw .unparseable("framework message is not a MiniTaskBatch (\(form), \(bytes.count) bytes): \(error)")
        }
        return (batch, encoding)
    }
}

extension Sparkmesos_Worker_V1_MiniTaskResults {
    /// The results as an executor MESSAGE payload in `encoding`. JSON uses the proto field names
    /// (`data_file`), as Mesos's own JSON does.
    public func payload(_ encoding: PayloadEncoding) -> [UInt8] {
        switch encoding {
        case .json: (try? jsonUTF8Bytes(options: Self.jsonOptions)) ?? []
        case .protobuf: (try? serializedBytes()) ?? []
        }
    }

    static let jsonOptions: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        return options
    }()
}
