import CNIOBoringSSL

/// Incremental sha256 through BoringSSL (linked already, for TLS), which uses the SHA-NI
/// instructions when the CPU has them (about 1.7 GB/s on the build machines, three times
/// coreutils). OpenSSL's libcrypto did the same but cost every executor its loading at exec.
final class SHA256 {
    private var context = SHA256_CTX()

    init() {
        SHA256_Init(&context)
    }

    func update(_ bytes: UnsafeRawBufferPointer) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        SHA256_Update(&context, base, bytes.count)
    }

    /// The digest in lower-case hex. Call once.
    func finish() -> String {
        var digest = [UInt8](repeating: 0, count: 32)
        SHA256_Final(&digest, &context)
        return Self.hex(digest)
    }

    static func hex(_ bytes: [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0xF)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// The sha256 of a string, in hex: cache keys for URIs.
    static func hex(of text: String) -> String {
        let hasher = SHA256()
        var text = text
        text.withUTF8 { hasher.update(UnsafeRawBufferPointer($0)) }
        return hasher.finish()
    }
}
