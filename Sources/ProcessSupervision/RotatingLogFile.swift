import SystemSupport
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One log file bounded by a ``LogRotation``: `path` is the live file, `path.1` … `path.N` the
/// rotated ones, newest first (logrotate's naming). A line is never split across files when it
/// can be helped: a rotation falls after the last line end that still fits, and a line begun in
/// the full file (up to 64 KiB of it) moves to the new one; only longer lines are cut.
struct RotatingLogFile: ~Copyable {
    let path: String
    let rotation: LogRotation
    /// The live file, or -1 after a failed open (output is then dropped until the next rotation).
    private var fd: Int32
    /// Bytes in the live file.
    private(set) var size: Int
    /// Bytes that could not be written (a full disk, a removed directory).
    private(set) var droppedBytes = 0

    /// Opens (appending to) the live file; an existing file counts towards the limit. Only a
    /// regular file with no other name is written: the directory may belong to a task's user, who
    /// could put a symbolic link (not followed), a hard link to a file elsewhere or a FIFO (opened
    /// without waiting, then refused) in its place to have the executor write where it may not.
    init(path: String, rotation: LogRotation) throws(ProcessError) {
        self.path = path
        self.rotation = rotation
        fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw .systemCall("opening \(path)", errno: errno) }
        var status = stat()
        let statErrno = fstat(fd, &status) == 0 ? 0 : errno
        guard statErrno == 0, status.st_mode & S_IFMT == S_IFREG, status.st_nlink == 1 else {
            Glibc.close(fd)
            throw statErrno != 0
                ? .systemCall("fstat \(path)", errno: statErrno)
                : .systemCall("opening \(path), which is not a regular file of its own,", errno: EPERM)
        }
        size = Int(status.st_size)
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Closes the live file; later output is dropped.
    mutating func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    /// Writes `chunk`, rotating as often as needed so that no file exceeds the limit.
    mutating func append(_ chunk: UnsafeRawBufferPointer) {
        var rest = chunk
        while !rest.isEmpty {
            let room = rotation.maximumFileBytes - size
            if rest.count <= room {
                write(rest)
                return
            }
            if room > 0, let newline = Self.lastNewline(in: UnsafeRawBufferPointer(rebasing: rest[..<room])) {
                write(UnsafeRawBufferPointer(rebasing: rest[...newline]))
                rest = UnsafeRawBufferPointer(rebasing: rest[(newline + 1)...])
                rotate()
            } else if let carried = takePartialLine() {
                // The file ends inside a line (or at a line end: nothing to carry): the line's
                // start moves to the new file, where the rest of it goes.
                rotate()
                carried.withUnsafeBytes { write($0) }
            } else {
                // One line longer than a whole file: cut it at the limit.
                let cut = max(0, room)
                write(UnsafeRawBufferPointer(rebasing: rest[..<cut]))
                rest = UnsafeRawBufferPointer(rebasing: rest[cut...])
                rotate()
            }
        }
    }

    /// The largest line start carried into the next file at a rotation.
    static let carryLimit = 64 * 1024

    /// The bytes after the file's last line end, cut off the file; nil when the file holds no
    /// line end in its last `carryLimit` bytes (a line too long to carry: it is cut instead).
    private mutating func takePartialLine() -> [UInt8]? {
        guard fd >= 0, size > 0 else { return nil }
        let length = min(size, Self.carryLimit)
        var tail = [UInt8](repeating: 0, count: length)
        let count = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, off_t(size - length)) }
        guard count == length,
            let newline = tail.withUnsafeBytes({ Self.lastNewline(in: $0) })
        else { return nil }
        let keep = size - length + newline + 1
        guard keep < size else { return [] }
        guard ftruncate(fd, off_t(keep)) == 0 else { return nil }
        size = keep
        return Array(tail[(newline + 1)...])
    }

    /// `path` → `path.1` → … → `path.N`, the oldest deleted; a new, empty live file, made new
    /// (`O_EXCL`): anything in its place since the renames (a link a task put there) is not
    /// written through, and output is dropped until the next rotation.
    mutating func rotate() {
        if fd >= 0 { Glibc.close(fd) }
        if rotation.rotatedFiles == 0 {
            unlink(path)
        } else {
            unlink("\(path).\(rotation.rotatedFiles)")
            for index in stride(from: rotation.rotatedFiles - 1, through: 1, by: -1) {
                rename("\(path).\(index)", "\(path).\(index + 1)")
            }
            rename(path, "\(path).1")
        }
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_APPEND | O_NOFOLLOW | O_CLOEXEC, 0o644)
        size = 0
    }

    private mutating func write(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        if fd >= 0, writeAll(fd, bytes) {
            size += bytes.count
        } else {
            droppedBytes += bytes.count
            // Counted anyway, so a file that cannot be written is retried at the next rotation.
            size += bytes.count
        }
    }

    private static func lastNewline(in bytes: UnsafeRawBufferPointer) -> Int? {
        var index = bytes.count - 1
        while index >= 0 {
            if bytes[index] == 0x0A { return index }
            index -= 1
        }
        return nil
    }
}
