import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `spark-mesos-executor harness …` runs the harness, a separate program (`spark-mesos-harness`)
/// so the executor itself stays small: found next to this binary, else in
/// /usr/libexec/spark-mesos-executor.
enum HarnessLauncher {
    static let program = "spark-mesos-harness"

    /// Replaces this process with the harness given `arguments`; returns an exit code only when it
    /// cannot.
    static func run(_ arguments: [String]) -> Int32 {
        let candidates = [ownDirectory() + "/" + program, "/usr/libexec/spark-mesos-executor/" + program]
        guard let path = candidates.first(where: { access($0, X_OK) == 0 }) else {
            ProcessEnvironment.printError(
                "Error: cannot find \(program) (looked in \(candidates.joined(separator: ", ")))")
            return 1
        }
        let argv = [path] + arguments
        var pointers = argv.map { strdup($0) } + [nil]
        execv(path, &pointers)
        ProcessEnvironment.printError("Error: cannot start \(path): \(String(cString: strerror(errno)))")
        return 1
    }

    static func ownDirectory() -> String {
        let path = ResidentMemory.executablePath ?? CommandLine.arguments[0]
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}
