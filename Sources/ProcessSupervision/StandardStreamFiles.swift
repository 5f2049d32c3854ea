#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A child's standard streams in the sandbox: stdin from /dev/null, stdout and stderr appended
/// to `stdout`/`stderr` in a directory created as needed (the layout Mesos's executors use).
public struct StandardStreamFiles: Sendable {
    public let directory: String
    public let stdin: Int32
    public let stdout: Int32
    public let stderr: Int32

    /// Opens the three descriptors (close-on-exec) in `directory`, creating it and its parents.
    public init(directory: String) throws(ProcessError) {
        var prefix = directory.hasPrefix("/") ? "" : "."
        for component in directory.split(separator: "/", omittingEmptySubsequences: true) {
            prefix += "/" + component
            if mkdir(prefix, 0o755) != 0 && errno != EEXIST { throw .systemCall("mkdir \(prefix)", errno: errno) }
        }
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC
        let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let out = open("\(directory)/stdout", flags, 0o644)
        let err = open("\(directory)/stderr", flags, 0o644)
        guard input >= 0, out >= 0, err >= 0 else {
            let code = errno
            for fd in [input, out, err] where fd >= 0 { Glibc.close(fd) }
            throw .systemCall("opening the log files in \(directory)", errno: code)
        }
        self.directory = directory
        stdin = input
        stdout = out
        stderr = err
    }

    /// The child's descriptors 0, 1 and 2.
    public var mappings: [(source: Int32, target: Int32)] { [(stdin, 0), (stdout, 1), (stderr, 2)] }

    /// Closes our copies once the child has its own. Call exactly once.
    public func close() {
        _ = Glibc.close(stdin)
        _ = Glibc.close(stdout)
        _ = Glibc.close(stderr)
    }

    /// Task and mini-task ids may hold any character; file and directory names keep to a safe
    /// alphabet, at most 200 characters, never hidden or `.`/`..`.
    public static func safeName(_ id: String) -> String {
        let mapped = id.unicodeScalars.prefix(200).map { scalar -> Character in
            let ok =
                scalar.isASCII
                && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                    || "-_.".unicodeScalars.contains(scalar))
            return ok ? Character(scalar) : "_"
        }
        let name = String(mapped)
        return name.isEmpty || name.hasPrefix(".") ? "_" + name : name
    }
}
