import ArgumentParser
import ExecutorCore

@main
struct SparkMesosExecutor: AsyncParsableCommand {
    static let version = "0.1.0"

    static let configuration = CommandConfiguration(
        commandName: "spark-mesos-executor",
        abstract: "A native Mesos executor for Spark-style workloads (Mesos v1 executor HTTP API).",
        discussion: """
            Run by a Mesos agent as the executor of a framework's ExecutorInfo or TaskInfo. \
            It reads its whole configuration from the environment the agent sets:

            \(EnvironmentVariable.allCases.map { "  \($0.name)\n      \($0.meaning)" }.joined(separator: "\n"))
            """,
        version: version,
        subcommands: [Run.self, HarnessLauncher.self, Cache.self],
        defaultSubcommand: Run.self
    )
}
