#if canImport(Glibc)
    import Glibc
#endif

/// A task's stdin (/dev/null) and its stdout/stderr files in the sandbox, under
/// `tasks/<task id>/` as Mesos's default executor lays them out.
struct TaskOutputFiles {
    let stdin: Int32
    let stdout: Int32
    let stderr: Int32
    let directory: String

    struct Failure: Error, CustomStringConvertible {
        let path: String
        let errno: Int32
        var description: String { "\(path): \(String(cString: strerror(errno)))" }
    }

    init(sandbox: String, taskID: String) throws(Failure) {
        directory = "\(sandbox)/tasks/\(Self.safeName(taskID))"
        for path in ["\(sandbox)/tasks", directory] where mkdir(path, 0o755) != 0 && errno != EEXIST {
            throw Failure(path: path, errno: errno)
        }
        let flags = O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC
        let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let out = open("\(directory)/stdout", flags, 0o644)
        let err = open("\(directory)/stderr", flags, 0o644)
        guard input >= 0, out >= 0, err >= 0 else {
            let code = errno
            for fd in [input, out, err] where fd >= 0 { Glibc.close(fd) }
            throw Failure(path: directory, errno: code)
        }
        stdin = input
        stdout = out
        stderr = err
    }

    /// Closes our copies (the child keeps its own). Call exactly once.
    func close() {
        _ = Glibc.close(stdin)
        _ = Glibc.close(stdout)
        _ = Glibc.close(stderr)
    }

    /// Task ids may hold any character; keep the directory name to a safe alphabet.
    static func safeName(_ taskID: String) -> String {
        let mapped = taskID.unicodeScalars.map { scalar -> Character in
            let ok =
                scalar.isASCII
                && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                    || "-_.".unicodeScalars.contains(scalar))
            return ok ? Character(scalar) : "_"
        }
        let name = String(mapped)
        return name.isEmpty || name == "." || name == ".." ? "_" + name : name
    }
}
