import CCgroup
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Small, exact file operations on cgroup control files (no buffering, no Foundation).
enum CgroupFiles {
    /// The whole file as text, or nil if it cannot be read.
    static func read(_ path: String) -> String? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return read(descriptor: fd)
    }

    /// The whole file from its start (`pread`, so an open descriptor can be read again and again),
    /// through a buffer on the stack: most control files are a line of a few bytes, read a dozen
    /// times per task, and a file read whole by its first read is decoded from it directly.
    /// `singleRecord`: the file is one of cgroupfs's single-record files (every control file but
    /// the process and thread lists), which the kernel writes whole into any read that has room
    /// for it, so a short read is the end and no second read is needed to see it.
    static func read(descriptor fd: Int32, singleRecord: Bool = false) -> String? {
        // 1 KiB: the size below which the standard library always puts a temporary on the stack.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 1024) { chunk -> String? in
            var bytes: [UInt8] = []
            while true {
                let count = pread(fd, chunk.baseAddress, chunk.count, off_t(bytes.count))
                if count < 0 && errno == EINTR { continue }
                guard count >= 0 else { return nil }
                let got = UnsafeBufferPointer(rebasing: chunk[0..<count])
                let ended = count == 0 || (singleRecord && count < chunk.count)
                if ended && bytes.isEmpty { return String(decoding: got, as: UTF8.self) }
                bytes.append(contentsOf: got)
                if ended { break }
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Whether the control file at `path` is written by the kernel as one record (see
    /// ``read(descriptor:singleRecord:)``): all but `cgroup.procs`, `cgroup.threads` and `tasks`.
    static func isSingleRecord(_ path: String) -> Bool {
        !(path.hasSuffix("/cgroup.procs") || path.hasSuffix("/cgroup.threads") || path.hasSuffix("/tasks"))
    }

    /// Writes `value` in one write(2), as the kernel expects of control files; returns errno or 0.
    @discardableResult
    static func write(_ path: String, _ value: String) -> Int32 {
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { return errno }
        defer { close(fd) }
        return write(descriptor: fd, value)
    }

    /// One write(2) of `value` to an open control file; returns errno or 0.
    static func write(descriptor fd: Int32, _ value: String) -> Int32 {
        var value = value
        let written = value.withUTF8 { Glibc.write(fd, $0.baseAddress, $0.count) }
        return written == value.utf8.count ? 0 : (written < 0 ? errno : EIO)
    }

    /// A number from a file's text holding one ("max" and unreadable files give nil).
    static func number(in text: String?) -> Int64? {
        text.flatMap { Int64($0.trimmingCharacters(in: " \n")) }
    }

    /// The value of `key` in the text of a flat keyed file ("key value" lines: memory.events,
    /// cpu.stat, oom_control).
    static func keyed(_ key: String, in text: String?) -> Int64? {
        guard let text else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 1)
            if parts.count == 2, parts[0] == key { return Int64(String(parts[1]).trimmingCharacters(in: " ")) }
        }
        return nil
    }

    /// Pids listed in a `cgroup.procs` file.
    static func pids(_ path: String) -> [Int32] { pids(in: read(path)) }

    /// Pids in the text of a `cgroup.procs` file.
    static func pids(in text: String?) -> [Int32] {
        (text ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    static func isDirectory(_ path: String) -> Bool {
        var info = stat()
        return stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFDIR
    }

    /// Names of the subdirectories of `path`.
    static func subdirectories(_ path: String) -> [String] {
        (directoryEntries(atPath: path) ?? []).filter(\.isDirectory).map(\.name)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let characters = Set(set)
        var view = Substring(self)
        while let first = view.first, characters.contains(first) { view = view.dropFirst() }
        while let last = view.last, characters.contains(last) { view = view.dropLast() }
        return String(view)
    }
}

/// libcgroup's text for its error codes (for ECGOTHER it is the system's text for the errno behind it).
func libcgroupDescription(_ code: Int32) -> String {
    cgroup_strerror(code).map { String(cString: $0) } ?? "libcgroup error \(code)"
}
