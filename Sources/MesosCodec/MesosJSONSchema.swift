import MesosProto
import SwiftProtobuf

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Field names and types of every message in our .proto files, read at run time from the
/// descriptor set that `.ci/generate-protos` embeds. Mesos's JSON is reflection-driven
/// (stout), so reading it faithfully needs the schema, not just the generated code.
struct MesosJSONSchema: Sendable {
    struct Field: Sendable {
        let name: String
        let type: Google_Protobuf_FieldDescriptorProto.TypeEnum
        let isRepeated: Bool
        let isRequired: Bool
        /// The fully qualified message or enum type (".mesos.v1.TaskID"), for message and enum fields.
        let typeName: String
    }

    struct MessageSchema: Sendable {
        let fields: [String: Field]
        let isMapEntry: Bool
    }

    private(set) var messages: [String: MessageSchema] = [:]
    private(set) var enums: [String: Set<String>] = [:]

    static let shared: MesosJSONSchema = {
        guard let bytes = Data(base64Encoded: MesosProtoDescriptors.fileDescriptorSetBase64),
            let set = try? Google_Protobuf_FileDescriptorSet(serializedBytes: bytes)
        else { preconditionFailure("the embedded descriptor set is corrupt: run .ci/generate-protos") }
        var schema = MesosJSONSchema()
        for file in set.file {
            let prefix = file.package.isEmpty ? "" : "." + file.package
            for message in file.messageType { schema.add(message, prefix: prefix) }
            for enumType in file.enumType { schema.add(enumType, prefix: prefix) }
        }
        return schema
    }()

    private mutating func add(_ message: Google_Protobuf_DescriptorProto, prefix: String) {
        let name = prefix + "." + message.name
        var fields: [String: Field] = [:]
        for field in message.field {
            fields[field.name] = Field(
                name: field.name, type: field.type, isRepeated: field.label == .repeated,
                isRequired: field.label == .required, typeName: field.typeName)
        }
        messages[name] = MessageSchema(fields: fields, isMapEntry: message.options.mapEntry)
        for nested in message.nestedType { add(nested, prefix: name) }
        for enumType in message.enumType { add(enumType, prefix: name) }
    }

    private mutating func add(_ enumType: Google_Protobuf_EnumDescriptorProto, prefix: String) {
        enums[prefix + "." + enumType.name] = Set(enumType.value.map(\.name))
    }
}
