import ExecutorCore
import Logging

/// What the executor's command line asks for, read by ``CommandLineInterface/parse(_:)``.
///
/// The executor reads its arguments itself rather than through swift-argument-parser: that
/// library finds a command's options by reflection and names types with `String(describing:)`,
/// and each first dynamic cast or conformance lookup scans all of this binary's 7,800 protocol
/// conformance records — about 2 ms of every executor's start before it could subscribe
/// (profiled 2026-11-30). The surface is small: one run mode, `harness`, and `cache`.
enum Invocation: Equatable {
    case run(RunOptions)
    /// Everything after `harness`, handed to the harness program unread.
    case harness([String])
    case cacheList(directory: String?)
    case cachePrune(directory: String?, maxBytes: Int64?)
    case cacheClear(directory: String?)
    /// Help text for the command line given (the whole program's, or one subcommand's).
    case help(String)
    case version
}

/// Executor mode's options (`run`, the default).
struct RunOptions: Equatable {
    var logLevel = Logger.Level.info
    /// `--encoding`: overrides `SPARK_MESOS_EXECUTOR_ENCODING`.
    var encoding: String?
    /// `--conf key=value`, in order (repeatable).
    var conf: [String] = []
    var cacheDirectory: String?
    /// Arguments run mode does not know, kept to be logged: Mesos starts its command executor with
    /// flags of its own (`--launcher_dir=…`), and this binary can stand in for it.
    var ignored: [String] = []
}

/// A command line the executor cannot follow: the message, and the usage line of the command it
/// was for. Exits with 64 (`EX_USAGE`).
struct UsageError: Error, Equatable {
    var message: String
    var usage: String
}

enum CommandLineInterface {
    static let program = "spark-mesos-executor"

    /// Reads `arguments` (without the program's own name).
    static func parse(_ arguments: [String]) throws(UsageError) -> Invocation {
        if arguments.contains("--version") && !arguments.starts(with: ["harness"]) { return .version }
        switch arguments.first {
        case "harness":
            return .harness(Array(arguments.dropFirst()))
        case "cache":
            return try parseCache(Array(arguments.dropFirst()))
        case "help":
            return .help(helpText(for: Array(arguments.dropFirst())))
        case "run":
            if wantsHelp(arguments) { return .help(runHelp) }
            return .run(try parseRun(Array(arguments.dropFirst())))
        default:
            if wantsHelp(arguments) { return .help(programHelp) }
            return .run(try parseRun(arguments))
        }
    }

    private static func wantsHelp(_ arguments: [String]) -> Bool {
        arguments.contains("--help") || arguments.contains("-h")
    }

    private static func parseRun(_ arguments: [String]) throws(UsageError) -> RunOptions {
        var options = RunOptions()
        var reader = OptionReader(arguments, usage: runUsage)
        while let argument = reader.next() {
            switch argument.name {
            case "--log-level":
                let text = try reader.value(for: argument)
                guard let level = Logger.Level(rawValue: text) else {
                    throw UsageError(
                        message: "--log-level '\(text)' is not valid; expected trace, debug, info, notice, warning, "
                            + "error or critical",
                        usage: runUsage)
                }
                options.logLevel = level
            case "--encoding": options.encoding = try reader.value(for: argument)
            case "--conf": options.conf.append(try reader.value(for: argument))
            case "--cache-dir": options.cacheDirectory = try reader.value(for: argument)
            default: options.ignored.append(argument.text)
            }
        }
        return options
    }

    private static func parseCache(_ arguments: [String]) throws(UsageError) -> Invocation {
        guard let subcommand = arguments.first, !subcommand.hasPrefix("-") else {
            if arguments.isEmpty || wantsHelp(arguments) { return .help(cacheHelp) }
            throw UsageError(message: "expected list, prune or clear after 'cache'", usage: cacheUsage)
        }
        guard let usage = cacheUsages[subcommand] else {
            throw UsageError(
                message: "unknown cache command '\(subcommand)'; expected list, prune or clear", usage: cacheUsage)
        }
        if wantsHelp(arguments) { return .help(cacheHelp) }
        var directory: String?
        var maxBytes: Int64?
        var reader = OptionReader(Array(arguments.dropFirst()), usage: usage)
        while let argument = reader.next() {
            switch (argument.name, subcommand) {
            case ("--dir", _): directory = try reader.value(for: argument)
            case ("--max-bytes", "prune"):
                let text = try reader.value(for: argument)
                guard let bytes = Int64(text), bytes >= 0 else {
                    throw UsageError(message: "--max-bytes '\(text)' is not a number of bytes", usage: usage)
                }
                maxBytes = bytes
            default:
                throw UsageError(message: "unknown argument '\(argument.text)' for 'cache \(subcommand)'", usage: usage)
            }
        }
        switch subcommand {
        case "list": return .cacheList(directory: directory)
        case "prune": return .cachePrune(directory: directory, maxBytes: maxBytes)
        default: return .cacheClear(directory: directory)
        }
    }

    /// Reads `--name value` and `--name=value` one argument at a time.
    private struct OptionReader {
        struct Argument {
            /// The argument as given.
            var text: String
            /// The option's name (`--name` of `--name=value`), or the whole argument.
            var name: String
            /// The value after `=`, if the argument carried one.
            var inlineValue: String?
        }

        private var remaining: ArraySlice<String>
        private let usage: String

        init(_ arguments: [String], usage: String) {
            remaining = arguments[...]
            self.usage = usage
        }

        mutating func next() -> Argument? {
            guard let text = remaining.popFirst() else { return nil }
            if text.hasPrefix("--"), let equals = text.firstIndex(of: "=") {
                return Argument(
                    text: text, name: String(text[..<equals]), inlineValue: String(text[text.index(after: equals)...]))
            }
            return Argument(text: text, name: text, inlineValue: nil)
        }

        /// The option's value: after its `=`, else the next argument.
        mutating func value(for argument: Argument) throws(UsageError) -> String {
            if let inline = argument.inlineValue { return inline }
            guard let value = remaining.popFirst() else {
                throw UsageError(message: "missing value for '\(argument.name)'", usage: usage)
            }
            return value
        }
    }

    // MARK: Help

    static let runUsage =
        "\(program) [run] [--log-level <level>] [--encoding protobuf|json] [--conf <key=value> ...] [--cache-dir <dir>]"
    static let harnessUsage = "\(program) harness [JOB] [harness options]   (see '\(program) harness --help')"
    static let cacheUsage = "\(program) cache list|prune|clear [--dir <dir>] [--max-bytes <bytes>]"
    private static let cacheUsages = [
        "list": "\(program) cache list [--dir <dir>]",
        "prune": "\(program) cache prune [--dir <dir>] [--max-bytes <bytes>]",
        "clear": "\(program) cache clear [--dir <dir>]",
    ]

    static func helpText(for path: [String]) -> String {
        switch path.first {
        case "run": runHelp
        case "cache": cacheHelp
        case "harness": "USAGE: \(harnessUsage)\n"
        default: programHelp
        }
    }

    private static let runOptions = """
        RUN OPTIONS:
          --log-level <level>     trace, debug, info, notice, warning, error or critical (default: info)
          --encoding <encoding>   protobuf or json for calls and events (overrides SPARK_MESOS_EXECUTOR_ENCODING)
          --conf <key=value>      a Spark property (repeatable); wins over ExecutorInfo.data
          --cache-dir <dir>       package cache directory (default: SPARK_MESOS_EXECUTOR_CACHE_DIR, else
                                  /var/cache/spark-mesos-executor)
          Mesos starts its command executor with flags of its own: with MESOS_HTTP_COMMAND_EXECUTOR=1,
          --task_environment and --task_command are honoured, and a task whose flags ask for a container
          (--rootfs, capabilities, a TTY, mounts) fails at launch; --launcher_dir and other arguments
          are ignored.
        """

    private static let cacheCommands = """
        CACHE COMMANDS:
          list                    one line per cached package: digest, size, last use, in use, URI
          prune                   evict least recently used entries no running executor uses, down to
                                  --max-bytes (default: the cache's cap, 8 GiB)
          clear                   remove every entry no running executor uses
          --dir <dir>             cache directory (default: SPARK_MESOS_EXECUTOR_CACHE_DIR, else
                                  /var/cache/spark-mesos-executor)
        """

    static var programHelp: String {
        let variables = EnvironmentVariable.allCases.map { "  \($0.name)\n      \($0.meaning)" }
        return """
            OVERVIEW: A native Mesos executor for Spark-style workloads (Mesos v1 executor HTTP API).

            Run by a Mesos agent as the executor of a framework's ExecutorInfo or TaskInfo. It reads its
            whole configuration from the environment the agent sets:

            \(variables.joined(separator: "\n"))

            USAGE:
              \(runUsage)
                  subscribe to the agent and run the tasks it sends (the default)
              \(harnessUsage)
                  try the executor without a cluster: a local agent drives it through a job
              \(cacheUsage)
                  list, prune or clear the shared package cache
              \(program) --version | --help | help <command>

            \(runOptions)

            \(cacheCommands)

            """
    }

    static var runHelp: String {
        """
        OVERVIEW: Subscribe to the agent and run the tasks it sends (the default).

        USAGE: \(runUsage)

        \(runOptions)

        The environment the executor reads is listed by '\(program) --help'.

        """
    }

    static var cacheHelp: String {
        """
        OVERVIEW: List, prune or clear the shared package cache.

        USAGE: \(cacheUsage)

        \(cacheCommands)

        """
    }
}
