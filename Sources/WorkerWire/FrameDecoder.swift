/// RecordIO framing (`<decimal length>\n<bytes>`), the same as Mesos's, over plain byte arrays.
public enum Frame {
    /// A cap on one worker message; larger results belong in files.
    public static let defaultMaximumSize = 256 * 1024 * 1024

    /// Appends `payload` as one frame to `buffer`.
    public static func append(_ payload: [UInt8], to buffer: inout [UInt8]) {
        appendPrefix(length: payload.count, to: &buffer)
        buffer.append(contentsOf: payload)
    }

    /// Appends the prefix of a frame of `length` bytes: the length in decimal and a newline.
    static func appendPrefix(length: Int, to buffer: inout [UInt8]) {
        var divisor = 1
        while divisor <= length / 10 { divisor *= 10 }
        var rest = length
        while divisor > 0 {
            buffer.append(UInt8(ascii: "0") + UInt8(rest / divisor))
            rest %= divisor
            divisor /= 10
        }
        buffer.append(UInt8(ascii: "\n"))
    }

    /// The size of a frame holding `length` bytes, its prefix included.
    static func size(ofFrameHolding length: Int) -> Int {
        var digits = 1
        var rest = length / 10
        while rest > 0 {
            digits += 1
            rest /= 10
        }
        return digits + 1 + length
    }
}

/// Splits a byte stream into frames, whatever the read boundaries. A pure value: feed bytes,
/// take frames; throws on a length prefix that cannot be a number.
public struct FrameDecoder: Sendable {
    private var buffer: [UInt8] = []
    private var start = 0
    public let maximumFrameSize: Int

    public init(maximumFrameSize: Int = Frame.defaultMaximumSize) {
        self.maximumFrameSize = maximumFrameSize
    }

    /// Adds bytes read from the pipe.
    public mutating func feed(_ bytes: some Collection<UInt8>) {
        dropTakenFrames()
        buffer.append(contentsOf: bytes)
    }

    /// Adds bytes read from the pipe into a buffer: what a reader calls, compiled for this type
    /// (the generic `feed` runs unspecialized from another module, looking its collection's
    /// witnesses up at run time, which each forked worker paid for again).
    public mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        dropTakenFrames()
        buffer.append(contentsOf: bytes)
    }

    private mutating func dropTakenFrames() {
        if start > 0 && start == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            start = 0
        }
    }

    /// The next complete frame, or nil until more bytes arrive.
    public mutating func next() throws(WireError) -> ArraySlice<UInt8>? {
        var length: UInt64 = 0
        var index = start
        while index < buffer.count, buffer[index] != UInt8(ascii: "\n") {
            let byte = buffer[index]
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), index - start < 20 else {
                throw .framing("length prefix \(Self.quote(buffer[start..<min(buffer.count, start + 32)]))")
            }
            length = length &* 10 &+ UInt64(byte - UInt8(ascii: "0"))
            index += 1
        }
        guard index < buffer.count else { return nil }
        guard index > start else { throw .framing("empty length prefix") }
        guard length <= UInt64(maximumFrameSize) else { throw .frameTooLarge(length, limit: maximumFrameSize) }
        let bodyStart = index + 1
        guard buffer.count - bodyStart >= Int(length) else { return nil }
        start = bodyStart + Int(length)
        let frame = buffer[bodyStart..<start]
        if start == buffer.count {
            // Keep the frame valid: it is a copy-on-write slice of the old storage.
            buffer = []
            start = 0
        } else if start > 1 << 16 && start > buffer.count / 2 {
            buffer.removeSubrange(0..<start)
            start = 0
        }
        return frame
    }

    /// Bytes received that do not yet form a whole frame.
    public var pendingByteCount: Int { buffer.count - start }

    static func quote(_ bytes: ArraySlice<UInt8>) -> String {
        "\""
            + bytes.map { (0x20..<0x7f).contains($0) ? String(UnicodeScalar($0)) : "\\x" + String($0, radix: 16) }
            .joined() + "\""
    }
}
