#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// strerror's text for the current errno.
public func errnoText() -> String { errnoText(errno) }

/// strerror's text for `code`.
public func errnoText(_ code: Int32) -> String {
    strerror(code).map { String(cString: $0) } ?? "errno \(code)"
}

/// Writes all of `bytes` to `fd`, retrying short writes and EINTR; false on any other error.
public func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
    var offset = 0
    while offset < bytes.count {
        let written = write(fd, bytes.baseAddress! + offset, bytes.count - offset)
        if written < 0 {
            if errno == EINTR { continue }
            return false
        }
        offset += written
    }
    return true
}

/// `mkdir -p`: the directory at `path` gets `mode` (0755 unless told), the parents it makes 0755.
/// The usual case, the directory already there or only it missing, is one `mkdir`; the path is
/// walked from its first component only when a parent is missing. An existing leaf is accepted as
/// it is. Returns the path that could not be made and the errno, or nil.
public func makeDirectories(atPath path: String, mode: UInt32 = 0o755) -> (path: String, errno: Int32)? {
    if mkdir(path, mode) == 0 || errno == EEXIST { return nil }
    guard errno == ENOENT else { return (path, errno) }
    var current = path.hasPrefix("/") ? "" : "."
    let parts = path.split(separator: "/")
    for (index, part) in parts.enumerated() {
        // `String(part)`: appending the Substring itself goes through the standard library's
        // generic `append(contentsOf:)`, whose first use scans every conformance record.
        current += "/" + String(part)
        let leaf = index == parts.count - 1
        if mkdir(current, leaf ? mode : 0o755) != 0 && errno != EEXIST { return (current, errno) }
    }
    return nil
}
