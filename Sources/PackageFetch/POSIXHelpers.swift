#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

func errnoText(_ code: Int32 = errno) -> String {
    strerror(code).map { String(cString: $0) } ?? "errno \(code)"
}

func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) -> Bool {
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
