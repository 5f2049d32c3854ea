#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One name in a directory, with its type as `readdir` gives it (`DT_DIR`, `DT_REG`, `DT_LNK`, …,
/// or `DT_UNKNOWN` where the file system does not say: look with `fstatat` then). The name is kept
/// as the bytes the kernel gave: a name that is not UTF-8 still names its file in a system call
/// (``withCName(_:)``), where its `String` would not.
public struct DirectoryEntry: Sendable, Equatable {
    /// The name's bytes, NUL-terminated.
    private let bytes: [CChar]
    public let type: UInt8

    init(bytes: [CChar], type: UInt8) {
        self.bytes = bytes
        self.type = type
    }

    /// The name as text (bytes that are not UTF-8 shown as U+FFFD).
    public var name: String {
        bytes.withUnsafeBufferPointer { buffer in
            String(decoding: UnsafeRawBufferPointer(buffer).prefix(buffer.count - 1), as: UTF8.self)
        }
    }

    public var isDirectory: Bool { type == UInt8(DT_DIR) }

    /// Calls `body` with the name exactly as the directory holds it.
    public func withCName<Result>(_ body: (UnsafePointer<CChar>) throws -> Result) rethrows -> Result {
        try bytes.withUnsafeBufferPointer { try body($0.baseAddress!) }
    }
}

/// The entries of the directory at `path`, `.` and `..` left out; nil (with `errno` set) when it
/// cannot be opened.
public func directoryEntries(atPath path: String) -> [DirectoryEntry]? {
    guard let stream = opendir(path) else { return nil }
    defer { closedir(stream) }
    return entries(of: stream)
}

/// The entries of the directory open at `fd` (which stays open, and is read from its start),
/// `.` and `..` left out; nil (with `errno` set) when it cannot be read.
public func directoryEntries(fd: Int32) -> [DirectoryEntry]? {
    let listing = dup(fd)
    guard listing >= 0 else { return nil }
    guard let stream = fdopendir(listing) else {
        let code = errno
        close(listing)
        errno = code
        return nil
    }
    defer { closedir(stream) }
    // The duplicate shares the offset of `fd`, which an earlier listing may have moved.
    rewinddir(stream)
    return entries(of: stream)
}

private func entries(of stream: OpaquePointer) -> [DirectoryEntry] {
    var entries: [DirectoryEntry] = []
    while let entry = readdir(stream) {
        let bytes = withUnsafeBytes(of: entry.pointee.d_name) { raw -> [CChar]? in
            let length = raw.firstIndex(of: 0) ?? raw.count
            // "." and "..".
            if raw[0] == 46 && (length == 1 || (length == 2 && raw[1] == 46)) { return nil }
            return [CChar](unsafeUninitializedCapacity: length + 1) { buffer, count in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: UnsafeRawBufferPointer(rebasing: raw[..<length]))
                buffer[length] = 0
                count = length + 1
            }
        }
        if let bytes { entries.append(DirectoryEntry(bytes: bytes, type: entry.pointee.d_type)) }
    }
    return entries
}
