import ArgumentParser
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// `spark-mesos-executor harness …` runs the harness, a separate program (`spark-mesos-harness`)
/// so the executor itself stays small: found next to this binary, else in
/// /usr/libexec/spark-mesos-executor.
struct HarnessLauncher: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "harness",
        abstract: "Try the executor without a cluster: a local agent drives it through a job (see `harness --help`).")

    @Argument(parsing: .captureForPassthrough, help: "JOB and the harness's options.")
    var arguments: [String] = []

    static let program = "spark-mesos-harness"

    func run() throws {
        let candidates = [
            Self.ownDirectory() + "/" + Self.program, "/usr/libexec/spark-mesos-executor/" + Self.program,
        ]
        guard let path = candidates.first(where: { access($0, X_OK) == 0 }) else {
            throw ValidationError("cannot find \(Self.program) (looked in \(candidates.joined(separator: ", ")))")
        }
        let argv = [path] + arguments
        var pointers = argv.map { strdup($0) } + [nil]
        execv(path, &pointers)
        throw ValidationError("cannot start \(path): \(String(cString: strerror(errno)))")
    }

    static func ownDirectory() -> String {
        let path = ResidentMemory.executablePath ?? CommandLine.arguments[0]
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return String(path[..<slash])
    }
}
