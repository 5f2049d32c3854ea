public import SwiftProtobuf

/// Mesos-style JSON (stout's mapping; `MesosJSONRulesTests` pins every rule), which differs from the proto3 JSON mapping:
/// proto field names, enum names, padded standard base64 for bytes, 64-bit integers as numbers,
/// unknown keys ignored, missing required fields rejected.
public enum MesosJSON {
    private static let encodingOptions: JSONEncodingOptions = {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.alwaysPrintInt64sAsNumbers = true
        return options
    }()

    private static let decodingOptions: JSONDecodingOptions = {
        var options = JSONDecodingOptions()
        options.ignoreUnknownFields = true
        return options
    }()

    /// Encodes `message` as compact Mesos JSON.
    public static func encode(_ message: some Message) throws -> [UInt8] {
        guard message.isInitialized else {
            throw CodecError.missingRequiredFields("\(type(of: message).protoMessageName) lacks required fields")
        }
        do {
            return try message.jsonUTF8Bytes(options: encodingOptions)
        } catch {
            throw CodecError.malformedJSON("cannot encode \(type(of: message).protoMessageName): \(error)")
        }
    }

    /// Decodes Mesos JSON into `M`, rejecting text that misses a required field.
    public static func decode<M: Message>(_ type: M.Type, from bytes: some Collection<UInt8>) throws -> M {
        let document = try JSONValue.parse(bytes)
        let normalizer = MesosJSONNormalizer(schema: .shared)
        let normalized = try normalizer.normalize(document, message: "." + M.protoMessageName, path: "")
        let message: M
        do {
            message = try M(jsonUTF8Bytes: normalized.serialized(), options: decodingOptions)
        } catch {
            throw CodecError.malformedJSON("not a valid \(M.protoMessageName): \(error)")
        }
        guard message.isInitialized else {
            throw CodecError.missingRequiredFields("\(M.protoMessageName) lacks required fields")
        }
        return message
    }
}
