import Foundation
import Yams

/// A job file as an untyped tree, read from JSON or YAML, before it is checked key by key.
enum JobValue: Sendable, Hashable, Decodable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JobValue])
    case object([String: JobValue])

    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JobValue].self) {
            self = .array(value)
        } else {
            self = .object(try container.decode([String: JobValue].self))
        }
    }

    /// Reads `bytes` as YAML when `file` ends in `.yaml`/`.yml`, else as JSON.
    static func parse(_ bytes: Data, file: String) throws(JobFileError) -> JobValue {
        let isYAML = file.hasSuffix(".yaml") || file.hasSuffix(".yml")
        do {
            if isYAML {
                return try YAMLDecoder().decode(JobValue.self, from: bytes)
            }
            return try JSONDecoder().decode(JobValue.self, from: bytes)
        } catch let error as DecodingError {
            throw .unreadableJob(file, "not valid \(isYAML ? "YAML" : "JSON"): \(Self.describe(error))")
        } catch {
            throw .unreadableJob(file, "not valid \(isYAML ? "YAML" : "JSON"): \(error)")
        }
    }

    private static func describe(_ error: DecodingError) -> String {
        switch error {
        case .dataCorrupted(let context):
            let underlying = (context.underlyingError as? NSError)?.userInfo[NSDebugDescriptionErrorKey] as? String
            return underlying ?? context.underlyingError.map { "\($0)" } ?? context.debugDescription
        default:
            return "\(error)"
        }
    }

    /// How the value is named in error messages ("a string", "the number 3").
    var kindDescription: String {
        switch self {
        case .null: "null"
        case .bool(let value): "the boolean \(value)"
        case .number(let value): "the number \(JobValue.format(value))"
        case .string(let value): "the string \"\(value)\""
        case .array: "a list"
        case .object: "an object"
        }
    }

    static func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}
