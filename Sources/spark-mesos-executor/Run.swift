import AgentConnection
public import ArgumentParser
import Dispatch
import ExecutorCore
public import Logging

#if canImport(Glibc)
import Glibc
#endif

/// Executor mode: what the agent starts.
struct Run: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Subscribe to the agent and run the tasks it sends (the default).")

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    @Option(name: .long, help: "Encoding of calls and events: protobuf or json (overrides SPARK_MESOS_EXECUTOR_ENCODING).")
    var encoding: String?

    func run() async throws {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "spark-mesos-executor")
        var environment = Self.processEnvironment()
        if let encoding { environment["SPARK_MESOS_EXECUTOR_ENCODING"] = encoding }
        let configuration: Configuration
        do {
            configuration = try Configuration(environment: environment, workingDirectory: Self.currentDirectory())
        } catch {
            Self.printError("spark-mesos-executor: \(error)")
            throw ExitCode(1)
        }
        // Tasks must not see the token the executor authenticates with.
        environment["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"] = nil
        let runner = CommandTaskRunner(baseEnvironment: environment, sandbox: configuration.sandbox)
        let code = try await withAgentClient(configuration.agentClient, logger: logger) { client in
            let runtime = ExecutorRuntime(configuration: configuration, client: client, runner: runner, logger: logger)
            let signals = Self.watchTermination { signal in
                Task { await runtime.shutdown(because: "received \(signal == SIGTERM ? "SIGTERM" : "SIGINT")") }
            }
            defer { signals.forEach { $0.cancel() } }
            return await runtime.run()
        }
        if code != 0 { throw ExitCode(code) }
    }

    static func processEnvironment() -> [String: String] {
        var result: [String: String] = [:]
        var pointer = environ
        while let entry = pointer.pointee {
            let text = String(cString: entry)
            if let equals = text.firstIndex(of: "=") {
                result[String(text[..<equals])] = String(text[text.index(after: equals)...])
            }
            pointer += 1
        }
        return result
    }

    static func currentDirectory() -> String {
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getcwd(&buffer, buffer.count) != nil else { return "." }
        return String(cString: buffer)
    }

    static func printError(_ text: String) {
        var line = text + "\n"
        line.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
    }

    /// SIGTERM and SIGINT start a graceful shutdown instead of killing the executor outright.
    static func watchTermination(_ handler: @escaping @Sendable (Int32) -> Void) -> [any DispatchSourceSignal] {
        [SIGTERM, SIGINT].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { handler(signalNumber) }
            source.resume()
            return source
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
