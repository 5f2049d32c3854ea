import SwiftProtobuf

/// Rewrites Mesos-style JSON into the form swift-protobuf reads, applying stout's rules
/// (see `MesosJSONRulesTests`) on the way, so that we accept and reject exactly what a Mesos agent does:
/// - only proto field names count; other keys (camelCase included) are ignored;
/// - `null` means absent; an object given for a repeated field is one element;
/// - enums must be names: a number is an error; an unknown name is dropped (error if required);
/// - booleans may be `true`/`false` or the strings `"true"`/`"false"`;
/// - bytes are standard base64: whitespace skipped, decoding stops at `=`, `-`/`_` rejected;
/// - numbers may be JSON numbers or numeric strings (swift-protobuf reads both).
struct MesosJSONNormalizer {
    let schema: MesosJSONSchema

    func normalize(_ value: JSONValue, message: String, path: String) throws(CodecError) -> JSONValue {
        guard case .object(let members) = value else {
            throw CodecError.malformedJSON("\(path.isEmpty ? "document" : path) must be a JSON object")
        }
        guard let messageSchema = schema.messages[message] else {
            throw CodecError.malformedJSON("no schema for \(message)")
        }
        var out: [(key: String, value: JSONValue)] = []
        for member in members {
            guard let field = messageSchema.fields[member.key] else { continue }
            if case .null = member.value { continue }
            let fieldPath = path.isEmpty ? member.key : "\(path).\(member.key)"
            if field.isRepeated {
                if isMap(field) {
                    out.append((member.key, try normalizeMap(member.value, field: field, path: fieldPath)))
                    continue
                }
                let items: [JSONValue]
                if case .array(let array) = member.value { items = array } else { items = [member.value] }
                var normalized: [JSONValue] = []
                for (index, item) in items.enumerated() {
                    if let value = try normalizeSingle(item, field: field, path: "\(fieldPath)[\(index)]") {
                        normalized.append(value)
                    }
                }
                out.append((member.key, .array(normalized)))
            } else if let value = try normalizeSingle(member.value, field: field, path: fieldPath) {
                out.append((member.key, value))
            }
        }
        return .object(out)
    }

    private func isMap(_ field: MesosJSONSchema.Field) -> Bool {
        field.type == .message && schema.messages[field.typeName]?.isMapEntry == true
    }

    private func normalizeMap(
        _ value: JSONValue, field: MesosJSONSchema.Field, path: String
    ) throws(CodecError) -> JSONValue {
        guard case .object(let members) = value else { throw CodecError.malformedJSON("\(path) must be a JSON object") }
        guard let valueField = schema.messages[field.typeName]?.fields["value"] else { return value }
        var out: [(key: String, value: JSONValue)] = []
        for member in members {
            if let normalized = try normalizeSingle(member.value, field: valueField, path: "\(path).\(member.key)") {
                out.append((member.key, normalized))
            }
        }
        return .object(out)
    }

    /// nil drops the value (an unknown enum name in an optional field).
    private func normalizeSingle(
        _ value: JSONValue, field: MesosJSONSchema.Field, path: String
    ) throws(CodecError) -> JSONValue? {
        switch field.type {
        case .message, .group:
            return try normalize(value, message: field.typeName, path: path)
        case .enum:
            guard case .string(let name) = value else {
                throw CodecError.malformedJSON("\(path): an enum must be given by name, not \(describe(value))")
            }
            if schema.enums[field.typeName]?.contains(name) == true { return value }
            if field.isRequired { throw CodecError.malformedJSON("\(path): unknown enum value '\(name)'") }
            return nil
        case .bool:
            switch value {
            case .bool: return value
            case .string("true"): return .bool(true)
            case .string("false"): return .bool(false)
            default: throw CodecError.malformedJSON("\(path): expected a boolean, got \(describe(value))")
            }
        case .bytes:
            guard case .string(let text) = value else {
                throw CodecError.malformedJSON("\(path): expected base64 text, got \(describe(value))")
            }
            return .string(try Self.canonicalBase64(text, path: path))
        case .string:
            guard case .string = value else {
                throw CodecError.malformedJSON("\(path): expected a string, got \(describe(value))")
            }
            return value
        default:
            switch value {
            case .number, .string: return value
            default: throw CodecError.malformedJSON("\(path): expected a number, got \(describe(value))")
            }
        }
    }

    private func describe(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "a boolean"
        case .number(let text): "the number \(text)"
        case .string: "a string"
        case .array: "an array"
        case .object: "an object"
        }
    }

    /// stout's base64 decoding: standard alphabet, whitespace skipped, stops at the first '='.
    /// Returns the same bytes as canonical padded base64.
    static func canonicalBase64(_ text: String, path: String) throws(CodecError) -> String {
        var sextets: [UInt8] = []
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"): sextets.append(byte - UInt8(ascii: "A"))
            case UInt8(ascii: "a")...UInt8(ascii: "z"): sextets.append(byte - UInt8(ascii: "a") + 26)
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sextets.append(byte - UInt8(ascii: "0") + 52)
            case UInt8(ascii: "+"): sextets.append(62)
            case UInt8(ascii: "/"): sextets.append(63)
            case 0x20, 0x0a, 0x0d, 0x09: continue
            case UInt8(ascii: "="): break
            default: throw CodecError.malformedJSON("\(path): invalid base64 character '\(UnicodeScalar(byte))'")
            }
            if byte == UInt8(ascii: "=") { break }
        }
        var bytes: [UInt8] = []
        var index = 0
        while index + 1 < sextets.count {
            let chunk = sextets[index..<min(index + 4, sextets.count)].map { UInt32($0) }
            let padded = chunk + [UInt32](repeating: 0, count: 4 - chunk.count)
            let value = padded[0] << 18 | padded[1] << 12 | padded[2] << 6 | padded[3]
            bytes.append(UInt8(value >> 16 & 0xff))
            if chunk.count > 2 { bytes.append(UInt8(value >> 8 & 0xff)) }
            if chunk.count > 3 { bytes.append(UInt8(value & 0xff)) }
            index += 4
        }
        return encodeBase64(bytes)
    }

    static func encodeBase64(_ bytes: [UInt8]) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out: [UInt8] = []
        var index = 0
        while index < bytes.count {
            let chunk = bytes[index..<min(index + 3, bytes.count)].map { UInt32($0) }
            let padded = chunk + [UInt32](repeating: 0, count: 3 - chunk.count)
            let value = padded[0] << 16 | padded[1] << 8 | padded[2]
            for position in 0..<4 {
                if position <= chunk.count {
                    out.append(alphabet[Int(value >> UInt32(18 - 6 * position) & 0x3f)])
                } else {
                    out.append(UInt8(ascii: "="))
                }
            }
            index += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}
