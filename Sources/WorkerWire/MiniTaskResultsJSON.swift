// The JSON form of a batch's results, written by hand for the same reason as the protobuf form
// (MiniTaskMessages.swift): SwiftProtobuf's JSON encoder, fed message objects built for the
// purpose, escaped every string scalar by scalar and was 18 % of the executor's time on JSON
// batches. The bytes are the ones SwiftProtobuf writes for `MiniTaskResults` with the proto field
// names (WireTests compares them byte for byte): fields at their defaults left out, `data` in
// base64 with padding, the same characters escaped the same way.

extension MiniTaskResult {
    /// The JSON encoding of `sparkmesos.worker.v1.MiniTaskResults` holding `results`, with the
    /// proto field names (`data_file`), as Mesos's own JSON names its fields.
    public static func encodeResultsJSON(_ results: [MiniTaskResult]) -> [UInt8] {
        guard !results.isEmpty else { return Array("{}".utf8) }
        var json = JSONText()
        var size = 14
        for result in results { size += result.jsonSizeEstimate }
        json.bytes.reserveCapacity(size)
        json.append("{\"results\":[")
        for (index, result) in results.enumerated() {
            if index > 0 { json.bytes.append(UInt8(ascii: ",")) }
            json.bytes.append(UInt8(ascii: "{"))
            var first = true
            json.field("id", result.id, first: &first)
            json.field("state", result.state, first: &first)
            if !result.data.isEmpty {
                json.key("data", first: &first)
                json.base64(result.data)
            }
            json.field("error", result.error, first: &first)
            json.field("data_file", result.dataFile, first: &first)
            json.bytes.append(UInt8(ascii: "}"))
        }
        json.append("]}")
        return json.bytes
    }

    /// Room for this result's JSON object when no character needs escaping.
    var jsonSizeEstimate: Int {
        40 + id.utf8.count + state.utf8.count + (data.count + 2) / 3 * 4 + error.utf8.count + dataFile.utf8.count
    }
}

/// JSON being written: keys, escaped strings and base64, as SwiftProtobuf writes them.
struct JSONText {
    var bytes: [UInt8] = []

    mutating func append(_ text: StaticString) {
        text.withUTF8Buffer { bytes.append(contentsOf: $0) }
    }

    mutating func key(_ name: StaticString, first: inout Bool) {
        if !first { bytes.append(UInt8(ascii: ",")) }
        first = false
        bytes.append(UInt8(ascii: "\""))
        append(name)
        append("\":")
    }

    /// A string field, left out when empty (proto3's default).
    mutating func field(_ name: StaticString, _ value: String, first: inout Bool) {
        guard !value.isEmpty else { return }
        key(name, first: &first)
        string(value)
    }

    mutating func string(_ value: String) {
        var value = value
        bytes.append(UInt8(ascii: "\""))
        value.withUTF8 { escaped($0) }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Copies runs that need no escape whole. Escaped: `"`, `\`, the C0 controls (`\b`, `\t`,
    /// `\n`, `\f`, `\r` by name, the rest as `\u00XX`), DEL and the C1 controls U+0080...U+009F
    /// (UTF-8 C2 80...C2 9F) as `\u00XX`.
    private mutating func escaped(_ utf8: UnsafeBufferPointer<UInt8>) {
        var runStart = 0
        var index = 0
        while index < utf8.count {
            let byte = utf8[index]
            let escape: UInt8?
            var width = 1
            switch byte {
            case 0x20...0x7e where byte != UInt8(ascii: "\"") && byte != UInt8(ascii: "\\"):
                index += 1
                continue
            case 0xc2 where index + 1 < utf8.count && (0x80...0x9f).contains(utf8[index + 1]):
                escape = utf8[index + 1]
                width = 2
            case 0x80...0xff:
                index += 1
                continue
            default:
                escape = byte
            }
            bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
            if let escape { escapeSequence(escape) }
            index += width
            runStart = index
        }
        bytes.append(contentsOf: UnsafeBufferPointer(rebasing: utf8[runStart..<index]))
    }

    private mutating func escapeSequence(_ scalar: UInt8) {
        bytes.append(UInt8(ascii: "\\"))
        switch scalar {
        case 0x08: bytes.append(UInt8(ascii: "b"))
        case 0x09: bytes.append(UInt8(ascii: "t"))
        case 0x0a: bytes.append(UInt8(ascii: "n"))
        case 0x0c: bytes.append(UInt8(ascii: "f"))
        case 0x0d: bytes.append(UInt8(ascii: "r"))
        case UInt8(ascii: "\""), UInt8(ascii: "\\"): bytes.append(scalar)
        default:
            append("u00")
            bytes.append(Self.hexDigits[Int(scalar >> 4)])
            bytes.append(Self.hexDigits[Int(scalar & 15)])
        }
    }

    private static let hexDigits = Array("0123456789ABCDEF".utf8)
    /// Standard base64's 64 digits, by value (the JSON mapping of `bytes` fields).
    static let base64Digits = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    /// The two digits of every 12-bit value, the first in the low byte (stored little-endian).
    private static let base64DigitPairs: [UInt16] = (0..<4096).map {
        UInt16(base64Digits[$0 >> 6]) | UInt16(base64Digits[$0 & 63]) << 8
    }

    /// `data` in standard base64 with `=` padding, quoted.
    mutating func base64(_ data: [UInt8]) {
        let encodedCount = (data.count + 2) / 3 * 4
        bytes.append(UInt8(ascii: "\""))
        let start = bytes.count
        bytes.append(contentsOf: repeatElement(UInt8(ascii: "="), count: encodedCount))
        Self.base64Digits.withUnsafeBufferPointer { digits in
            Self.base64DigitPairs.withUnsafeBufferPointer { pairs in
                bytes.withUnsafeMutableBytes { output in
                    data.withUnsafeBufferPointer { input in
                        var out = start
                        var index = 0
                        // Three bytes are two 12-bit halves, each two digits: two lookups and one
                        // store instead of four and four (0.53 against 0.87 µs per KiB).
                        while index + 3 <= input.count {
                            let group = Int(input[index]) << 16 | Int(input[index + 1]) << 8 | Int(input[index + 2])
                            let four = UInt32(pairs[group >> 12]) | UInt32(pairs[group & 4095]) << 16
                            output.storeBytes(of: four.littleEndian, toByteOffset: out, as: UInt32.self)
                            index += 3
                            out += 4
                        }
                        let left = input.count - index
                        guard left > 0 else { return }
                        let group = Int(input[index]) << 16 | (left == 2 ? Int(input[index + 1]) << 8 : 0)
                        output[out] = digits[group >> 18]
                        output[out + 1] = digits[(group >> 12) & 63]
                        if left == 2 { output[out + 2] = digits[(group >> 6) & 63] }
                    }
                }
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
