// The benchmark's command line. Every option is checked before anything runs: a whole run takes
// minutes, so a misspelt option or scenario (or `--help`) must not start one.

import Foundation

#if canImport(Glibc)
    import Glibc
#endif

struct BenchmarkOptions {
    static let scenarios = [
        "startup", "idle", "command", "fine", "fine-cgroups", "fine-spawned", "coarse", "minis", "worker", "logs",
        "fetch",
    ]

    /// The numeric options (each takes a whole number of at least 1): name, default, what it sizes.
    static let counts: [(name: String, fallback: Int, help: String)] = [
        ("--tasks", 1000, "tasks a launch scenario sends at once"),
        ("--minis", 20000, "mini-tasks the minis scenario runs"),
        ("--mini-payload", 1, "bytes of each mini-task's payload"),
        ("--waves", 1, "waves the tasks of a scenario are sent in, each after the last finished"),
        ("--starts", 11, "executors the startup scenario starts"),
        ("--latency-tasks", 100, "tasks a launch scenario runs one at a time for its latency"),
        ("--worker-runs", 200_000, "runs the worker scenario sends the demo worker alone"),
        ("--log-mib", 1024, "MiB the logs scenario's task writes to its stdout"),
    ]

    static let usage = """
        usage: executor-benchmark [--only SCENARIO] [--tasks N] [--minis N] [--mini-payload N] [--waves N]
                                  [--starts N] [--latency-tasks N] [--worker-runs N] [--log-mib N]
                                  [--log-level LEVEL] [--compare EXECUTOR]

        Drives the release executor next to it with the local agent over loopback and prints one
        table: every figure next to a floor of this machine measured in the same run.

          --only SCENARIO      run one scenario (the floors are measured every time):
                               \(scenarios.joined(separator: ", "))
        \(counts.map { "  \(($0.name + " N").padding(toLength: 21, withPad: " ", startingAt: 0))\($0.help) (\($0.fallback))" }
            .joined(separator: "\n"))
          --log-level LEVEL    the executors' log level (error); info is what an agent runs them at
          --compare EXECUTOR   the startup scenario also starts this executor binary, alternating
                               with ours, and prints the ratio pair by pair; put it beside ours,
                               copied the same way (from tmpfs a program starts slower)
        """

    var only: String?
    var logLevel = "error"
    var compareExecutor: String?
    private var values: [String: Int] = [:]

    func count(_ name: String) -> Int {
        values[name] ?? Self.counts.first { $0.name == name }!.fallback
    }

    enum Problem: Error, CustomStringConvertible {
        case help
        case unknown(String)
        case missingValue(String)
        case badValue(String, String, String)

        var description: String {
            switch self {
            case .help: "help asked for"
            case .unknown(let option): "unknown option '\(option)'"
            case .missingValue(let option): "\(option) needs a value"
            case .badValue(let option, let value, let expected): "\(option) \(value): \(expected)"
            }
        }
    }

    init(_ arguments: some Collection<String>) throws(Problem) {
        var rest = arguments[...]
        while let option = rest.popFirst() {
            if option == "--help" || option == "-h" { throw .help }
            let known = option == "--only" || option == "--log-level" || option == "--compare"
            guard known || Self.counts.contains(where: { $0.name == option }) else { throw .unknown(option) }
            guard let value = rest.popFirst() else { throw .missingValue(option) }
            switch option {
            case "--only":
                guard Self.scenarios.contains(value) else {
                    throw .badValue(option, value, "not a scenario; one of \(Self.scenarios.joined(separator: ", "))")
                }
                only = value
            case "--log-level":
                guard ["trace", "debug", "info", "notice", "warning", "error", "critical"].contains(value) else {
                    throw .badValue(option, value, "not a log level")
                }
                logLevel = value
            case "--compare":
                guard access(value, X_OK) == 0 else { throw .badValue(option, value, "not an executable file") }
                // Executors start in sandboxes of their own: a relative path is made absolute here.
                compareExecutor = value.hasPrefix("/") ? value : FileManager.default.currentDirectoryPath + "/" + value
            default:
                guard let number = Int(value), number >= 1 else {
                    throw .badValue(option, value, "not a whole number of at least 1")
                }
                values[option] = number
            }
        }
    }

    /// The options of this process's command line, or the usage (exit 0 for `--help`, 2 otherwise).
    static func parseOrExit() -> BenchmarkOptions {
        do {
            return try BenchmarkOptions(CommandLine.arguments.dropFirst())
        } catch .help {
            print(usage)
            exit(0)
        } catch {
            FileHandle.standardError.write(Data("executor-benchmark: \(error)\n\(usage)\n".utf8))
            exit(2)
        }
    }
}
