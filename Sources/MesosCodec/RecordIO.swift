public import NIOCore

/// RecordIO framing as the Mesos agent writes it: `<decimal length>\n<length bytes>`.
public enum RecordIO {
    /// The default cap on one record. Mesos sets none; events carrying a TaskInfo are small,
    /// so 64 MiB is generous while still refusing a length that would exhaust memory.
    public static let defaultMaximumRecordSize = 64 * 1024 * 1024

    /// Frames `payload` as one record.
    public static func encode(_ payload: some Collection<UInt8>, into buffer: inout ByteBuffer) {
        buffer.writeString(String(payload.count))
        buffer.writeInteger(UInt8(ascii: "\n"))
        buffer.writeBytes(payload)
    }

    /// Frames `payload` as one record in a new buffer.
    public static func encode(_ payload: some Collection<UInt8>) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(payload.count + 21)
        encode(payload, into: &buffer)
        return buffer
    }
}

/// Splits a byte stream into RecordIO records, whatever the read boundaries.
///
/// Never allocates for a record before its length is known to be within `maximumRecordSize`,
/// and fails (instead of waiting forever) on a length prefix that cannot be a number.
public struct RecordIODecoder: NIOSingleStepByteToMessageDecoder, Sendable {
    public typealias InboundOut = ByteBuffer

    /// A uint64 has at most 20 decimal digits.
    private static let maximumLengthDigits = 20

    public let maximumRecordSize: Int
    private var pendingLength: Int?

    public init(maximumRecordSize: Int = RecordIO.defaultMaximumRecordSize) {
        precondition(maximumRecordSize >= 0)
        self.maximumRecordSize = maximumRecordSize
    }

    public mutating func decode(buffer: inout ByteBuffer) throws -> ByteBuffer? {
        if pendingLength == nil {
            guard let length = try readLength(&buffer) else { return nil }
            pendingLength = length
        }
        guard let length = pendingLength, let record = buffer.readSlice(length: length) else { return nil }
        pendingLength = nil
        return record
    }

    public mutating func decodeLast(buffer: inout ByteBuffer, seenEOF: Bool) throws -> ByteBuffer? {
        if let record = try decode(buffer: &buffer) { return record }
        if let length = pendingLength {
            throw CodecError.truncatedRecord("expected \(length) bytes, got \(buffer.readableBytes)")
        }
        if buffer.readableBytes > 0 {
            throw CodecError.truncatedRecord("incomplete length prefix \(Self.quote(buffer.readableBytesView))")
        }
        return nil
    }

    private func readLength(_ buffer: inout ByteBuffer) throws -> Int? {
        let view = buffer.readableBytesView
        let newline = view.firstIndex(of: UInt8(ascii: "\n"))
        let digits = view[..<(newline ?? view.endIndex)]
        if digits.count > Self.maximumLengthDigits || (newline != nil && digits.isEmpty) {
            throw CodecError.malformedRecordLength(Self.quote(digits))
        }
        var value: UInt64 = 0
        for byte in digits {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else {
                throw CodecError.malformedRecordLength(Self.quote(digits))
            }
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            if overflow1 || overflow2 { throw CodecError.malformedRecordLength(Self.quote(digits)) }
            value = sum
        }
        guard newline != nil else { return nil }
        if value > UInt64(maximumRecordSize) {
            throw CodecError.recordTooLarge(length: value, limit: maximumRecordSize)
        }
        buffer.moveReaderIndex(forwardBy: digits.count + 1)
        return Int(value)
    }

    private static func quote(_ bytes: some Collection<UInt8>) -> String {
        let shown = bytes.prefix(32).map { byte -> String in
            (0x20..<0x7f).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
        }.joined()
        return "\"\(shown)\(bytes.count > 32 ? "…" : "")\""
    }
}
