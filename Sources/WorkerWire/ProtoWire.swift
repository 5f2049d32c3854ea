/// Just enough of the protobuf binary format for the worker pipe messages, without Foundation or
/// SwiftProtobuf, so that a worker starts as fast as a plain Swift program.
///
/// A message is written once, into the buffer it is sent from: its nested message's length is
/// computed first (``ProtoSize``) rather than the nested message written into a buffer of its own
/// and copied, and the buffer is grown once. Every run and result crosses the pipes this way, and
/// the nested buffers and their growth were most of what encoding one cost.
struct ProtoWriter {
    /// What was written (a caller's buffer swapped in appends to it).
    var bytes: [UInt8] = []

    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    mutating func tag(_ field: Int, _ wireType: UInt8) { varint(UInt64(field) << 3 | UInt64(wireType)) }

    /// proto3: zero values are not written.
    mutating func uint(_ field: Int, _ value: UInt64) {
        guard value != 0 else { return }
        tag(field, 0)
        varint(value)
    }

    /// A double (wire type 1, little-endian); proto3: zero is not written.
    mutating func double(_ field: Int, _ value: Double) {
        guard value != 0 else { return }
        tag(field, 1)
        var bits = value.bitPattern
        for _ in 0..<8 {
            bytes.append(UInt8(truncatingIfNeeded: bits))
            bits >>= 8
        }
    }

    mutating func bytes(_ field: Int, _ value: some Collection<UInt8>, always: Bool = false) {
        guard always || !value.isEmpty else { return }
        tag(field, 2)
        varint(UInt64(value.count))
        bytes.append(contentsOf: value)
    }

    mutating func string(_ field: Int, _ value: String, always: Bool = false) {
        bytes(field, value.utf8, always: always)
    }

    /// A nested message of `size` bytes (its ``ProtoSize``), which `body` writes.
    mutating func message(_ field: Int, size: Int, _ body: (inout ProtoWriter) -> Void) {
        tag(field, 2)
        varint(UInt64(size))
        let start = bytes.count
        body(&self)
        assert(bytes.count - start == size, "message \(field): \(bytes.count - start) bytes written, \(size) sized")
    }

    /// A map<string, string> field: one entry message per pair (its key and value written even
    /// when empty, as the generated code writes them), sorted for stable output.
    mutating func map(_ field: Int, _ map: [String: String]) {
        guard !map.isEmpty else { return }
        for (key, value) in map.sorted(by: { $0.key < $1.key }) {
            message(field, size: ProtoSize.mapEntry(key, value)) {
                $0.string(1, key, always: true)
                $0.string(2, value, always: true)
            }
        }
    }
}

/// How many bytes ``ProtoWriter`` writes for a field, with the same rules (proto3: zero values
/// and empty strings are not written).
enum ProtoSize {
    static func varint(_ value: UInt64) -> Int {
        value < 0x80 ? 1 : (64 - value.leadingZeroBitCount + 6) / 7
    }

    static func tag(_ field: Int) -> Int { varint(UInt64(field) << 3) }

    static func uint(_ field: Int, _ value: UInt64) -> Int { value == 0 ? 0 : tag(field) + varint(value) }

    static func double(_ field: Int, _ value: Double) -> Int { value == 0 ? 0 : tag(field) + 8 }

    /// A length-delimited field of `count` bytes.
    static func bytes(_ field: Int, count: Int, always: Bool = false) -> Int {
        !always && count == 0 ? 0 : tag(field) + varint(UInt64(count)) + count
    }

    static func string(_ field: Int, _ value: String, always: Bool = false) -> Int {
        bytes(field, count: value.utf8.count, always: always)
    }

    /// A map entry writes its key and value even when empty, as the generated code does.
    static func mapEntry(_ key: String, _ value: String) -> Int {
        string(1, key, always: true) + string(2, value, always: true)
    }

    static func map(_ field: Int, _ map: [String: String]) -> Int {
        var size = 0
        for (key, value) in map { size += bytes(field, count: mapEntry(key, value), always: true) }
        return size
    }
}

/// Reads fields one at a time; skips fields it does not know, as protobuf requires.
struct ProtoReader {
    private let bytes: ArraySlice<UInt8>
    private var index: Int

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
        index = bytes.startIndex
    }

    enum Value {
        case varint(UInt64)
        /// Wire type 1 (double, fixed64), little-endian.
        case fixed64(UInt64)
        case bytes(ArraySlice<UInt8>)
        /// Wire type 5 (float, fixed32, sfixed32): no field of ours has it, so it is only skipped.
        case fixed32
    }

    /// The next field, or nil at the end.
    mutating func next() throws(WireError) -> (field: Int, value: Value)? {
        guard index < bytes.endIndex else { return nil }
        let key = try varint()
        let field = Int(key >> 3)
        guard field > 0 else { throw .malformed("field number 0") }
        switch key & 7 {
        case 0:
            return (field, .varint(try varint()))
        case 1:
            var bits: UInt64 = 0
            for byte in try take(8).reversed() { bits = bits << 8 | UInt64(byte) }
            return (field, .fixed64(bits))
        case 2:
            let length = try varint()
            guard length <= UInt64(bytes.endIndex - index) else { throw .malformed("length \(length) past the end") }
            return (field, .bytes(try take(Int(length))))
        case 5:
            _ = try take(4)
            return (field, .fixed32)
        default:
            throw .malformed("unsupported wire type \(key & 7) for field \(field)")
        }
    }

    private mutating func take(_ count: Int) throws(WireError) -> ArraySlice<UInt8> {
        guard count <= bytes.endIndex - index else { throw .malformed("field runs past the end") }
        defer { index += count }
        return bytes[index..<index + count]
    }

    private mutating func varint() throws(WireError) -> UInt64 {
        var result: UInt64 = 0
        var shift: UInt64 = 0
        while index < bytes.endIndex {
            let byte = bytes[index]
            index += 1
            guard shift < 64 else { throw .malformed("varint too long") }
            result |= UInt64(byte & 0x7f) << shift
            if byte & 0x80 == 0 { return result }
            shift += 7
        }
        throw .malformed("truncated varint")
    }
}

extension ProtoReader.Value {
    func uint(_ name: String) throws(WireError) -> UInt64 {
        guard case .varint(let value) = self else { throw .malformed("\(name) is not a varint") }
        return value
    }

    func data(_ name: String) throws(WireError) -> ArraySlice<UInt8> {
        guard case .bytes(let value) = self else { throw .malformed("\(name) is not length-delimited") }
        return value
    }

    func string(_ name: String) throws(WireError) -> String {
        let raw = try data(name)
        // ASCII (ids and function names nearly always are) is UTF-8 as it stands. The validating
        // initializer is unspecialized in the standard library: it looks up its generic metadata
        // in the runtime's cache for every string, which was 4 % of a worker's time on mini-tasks.
        if raw.allSatisfy({ $0 < 0x80 }) { return String(decoding: raw, as: UTF8.self) }
        guard let text = String(validating: raw, as: UTF8.self) else { throw .malformed("\(name) is not UTF-8") }
        return text
    }

    /// A double (wire type 1).
    func double(_ name: String) throws(WireError) -> Double {
        guard case .fixed64(let bits) = self else { throw .malformed("\(name) is not a double") }
        return Double(bitPattern: bits)
    }

    func mapEntry(_ name: String) throws(WireError) -> (String, String) {
        var reader = ProtoReader(try data(name))
        var key = ""
        var value = ""
        while let (field, item) = try reader.next() {
            if field == 1 { key = try item.string("\(name) key") }
            if field == 2 { value = try item.string("\(name) value") }
        }
        return (key, value)
    }
}
