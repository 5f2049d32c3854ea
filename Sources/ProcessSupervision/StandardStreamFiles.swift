#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif
import SystemSupport

/// A child's standard streams in the sandbox: stdin from /dev/null, stdout and stderr into
/// `stdout`/`stderr` in a directory created as needed (the layout Mesos's executors use).
///
/// The child writes to pipes; the process-wide ``LogDrain`` moves the output into the files and
/// rotates them by size (``LogRotation``), so a child that writes without end never fills the disk.
public struct StandardStreamFiles: Sendable {
    public let directory: String
    public let stdin: Int32
    /// The write end of the stdout pipe (for the child).
    public let stdout: Int32
    /// The write end of the stderr pipe (for the child).
    public let stderr: Int32
    public let rotation: LogRotation
    private let streams: [LogDrain.Stream]

    /// Opens the stdout and stderr pipes (close-on-exec) and their files in `directory`, creating
    /// it and its parents.
    public init(directory: String, rotation: LogRotation = .default) throws(ProcessError) {
        try Self.makeDirectory(directory)
        guard let input = Self.nullInput.descriptor else {
            throw .systemCall("opening /dev/null", errno: Self.nullInput.openErrno)
        }
        let out: (writeEnd: Int32, stream: LogDrain.Stream)
        let err: (writeEnd: Int32, stream: LogDrain.Stream)
        out = try LogDrain.shared.open(path: "\(directory)/stdout", rotation: rotation)
        do {
            err = try LogDrain.shared.open(path: "\(directory)/stderr", rotation: rotation)
        } catch {
            Glibc.close(out.writeEnd)
            throw error
        }
        self.directory = directory
        self.rotation = rotation
        stdin = input
        stdout = out.writeEnd
        stderr = err.writeEnd
        streams = [out.stream, err.stream]
    }

    /// /dev/null for every child's stdin, opened once (close-on-exec) and never closed: a child
    /// gets its own copy as descriptor 0.
    private static let nullInput: (descriptor: Int32?, openErrno: Int32) = {
        let descriptor = open("/dev/null", O_RDONLY | O_CLOEXEC)
        return descriptor >= 0 ? (descriptor, 0) : (nil, errno)
    }()

    /// `mkdir -p`: a task's directory is new, its parents (the sandbox's `tasks`) exist after the
    /// first task, so this is one `mkdir`. The directory is 0750, as Mesos makes a task's sandbox:
    /// a task of another user let through the executor's sandbox (``TaskAccount``) reaches its own
    /// directory, not the output of the executor's tasks and workers. A directory already there
    /// (a task of another user's, made and given to it first) is kept as it is.
    private static func makeDirectory(_ directory: String) throws(ProcessError) {
        if let failed = makeDirectories(atPath: directory, mode: 0o750) {
            throw .systemCall("mkdir \(failed.path)", errno: failed.errno)
        }
    }

    /// The child's descriptors 0, 1 and 2.
    public var mappings: [(source: Int32, target: Int32)] { [(stdin, 0), (stdout, 1), (stderr, 2)] }

    /// Closes our copies once the child has its own. Call exactly once. The files stay open
    /// until every process holding the pipes is gone and what they wrote has landed.
    public func close() {
        _ = Glibc.close(stdout)
        _ = Glibc.close(stderr)
    }

    /// Writes what the pipes hold now to the files, before returning: call it once the child
    /// (and everything it started) has exited, so that its last output is in the files before
    /// anyone is told it ended.
    public func flush() {
        LogDrain.shared.flush(streams)
    }

    /// The last line the child wrote to stderr (at most `limit` bytes of it, trimmed), written to
    /// the file first: what a child that failed before it could say anything else last said.
    public func lastStderrLine(limit: Int = 300) -> String? {
        flush()
        let fd = open("\(directory)/stderr", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = Glibc.close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0, status.st_size > 0 else { return nil }
        let length = Int(min(Int64(status.st_size), 4096))
        let offset = off_t(Int64(status.st_size) - Int64(length))
        var bytes = [UInt8](repeating: 0, count: length)
        let got = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress, length, offset) }
        guard got > 0 else { return nil }
        func isBlank(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 13 }
        let lines = bytes[..<got].split(separator: UInt8(ascii: "\n"))
        guard let line = lines.last(where: { !$0.allSatisfy(isBlank) }) else { return nil }
        let trimmed = line.drop(while: isBlank).reversed().drop(while: isBlank).reversed()
        let text = String(decoding: trimmed, as: UTF8.self)
        return text.count > limit ? String(text.suffix(limit)) : text
    }

    /// Where a task's `stdout` and `stderr` are, relative to the sandbox: `tasks/<safe name>`.
    public static func taskDirectory(_ taskID: String) -> String { "tasks/" + safeName(taskID) }

    /// The file or directory name of a task or mini-task id, which may hold any character: the id
    /// itself when it is a safe name (letters, digits, `-_.`, at most 200 characters, not hidden),
    /// else its safe form (every other character `_`, cut at 200, `_` before a leading `.`) with a
    /// hash of the whole id after it, so that two ids never share a name (`a/b` and `a b` would
    /// both be `a_b`, and two long ids with the same first 200 characters one name).
    public static func safeName(_ id: String) -> String {
        let mapped = id.unicodeScalars.prefix(200).map { scalar -> Character in
            let ok =
                scalar.isASCII
                && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                    || "-_.".unicodeScalars.contains(scalar))
            return ok ? Character(scalar) : "_"
        }
        var name = String(mapped)
        if name.isEmpty || name.hasPrefix(".") { name = "_" + name }
        return name == id ? name : name + "-" + stableHashHex(id.utf8)
    }
}
