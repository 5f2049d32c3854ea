import Foundation
import LocalAgent
import MesosProto
import ProcessSupervision
import XCTest

#if canImport(Glibc)
import Glibc
#endif

/// The real `spark-mesos-executor` binary, started the way an agent starts it.
final class BinaryEndToEndTests: XCTestCase {
    /// The executable built next to this test bundle.
    static var executable: String {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("spark-mesos-executor").path
    }

    struct Launched {
        let child: ChildProcess
        let stderrPath: String
        var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    }

    static func launch(_ environment: [String: String], sandbox: String, arguments: [String] = []) throws -> Launched {
        let out = open(sandbox + "/stdout", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let err = open(sandbox + "/stderr", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer {
            close(out)
            close(err)
        }
        var environment = environment
        environment["SPARK_MESOS_EXECUTOR_CACHE_DIR"] = sandbox + "/.cache"
        let child = try ChildProcess.spawn(
            SpawnRequest(
                executable: executable, arguments: ["spark-mesos-executor"] + arguments,
                environment: environment.map { "\($0.key)=\($0.value)" }, workingDirectory: sandbox,
                fileDescriptors: [(out, 1), (err, 2)]))
        return Launched(child: child, stderrPath: sandbox + "/stderr")
    }

    func testMalformedEnvironmentExitsOneWithOneLine() async throws {
        let sandbox = try ExecutorUnderTest.makeSandbox()
        let launched = try Self.launch(
            ["MESOS_FRAMEWORK_ID": "f", "MESOS_EXECUTOR_ID": "e", "MESOS_AGENT_ENDPOINT": "127.0.0.1:5051",
             "MESOS_CHECKPOINT": "yes"],
            sandbox: sandbox)
        let termination = await launched.child.wait()
        XCTAssertEqual(termination, .exited(1))
        XCTAssertEqual(launched.stderr, "spark-mesos-executor: MESOS_CHECKPOINT='yes' is malformed: expected \"1\" or \"0\"\n")
    }

    func testSIGTERMShutsDownGracefully() async throws {
        let sandbox = try ExecutorUnderTest.makeSandbox()
        var configuration = LocalAgentConfiguration()
        configuration.sandboxDirectory = sandbox
        try await withLocalAgent(configuration) { agent in
            var task = agent.makeTask("sleeper")
            task.command.value = "exec sleep 300"
            try await agent.launch(task)
            let launched = try await Self.launch(agent.environment(), sandbox: sandbox)
            try await agent.waitUntil("running") { $0.taskStates["sleeper"] == .taskRunning }
            launched.child.signal(SIGTERM)
            let termination = await launched.child.wait()
            XCTAssertEqual(termination, .exited(0), launched.stderr)
            let final = await agent.state.updates(forTask: "sleeper").last?.status
            XCTAssertEqual(final?.state, .taskKilled)
            XCTAssertEqual(final?.reason, .executorTerminated)
            XCTAssertTrue(final?.message.contains("received SIGTERM") == true, final?.message ?? "")
            let acknowledged = await agent.state.updates.allSatisfy(\.acknowledged)
            XCTAssertTrue(acknowledged)
        }
    }

    /// Standing in for Mesos's command executor (`--http_command_executor`): it accepts the
    /// command executor's flags, runs the one task, and exits once its terminal update is acknowledged.
    func testStandsInForTheCommandExecutor() async throws {
        let sandbox = try ExecutorUnderTest.makeSandbox()
        var configuration = LocalAgentConfiguration()
        configuration.sandboxDirectory = sandbox
        try await withLocalAgent(configuration) { agent in
            var task = agent.makeTask("spark-coarse")
            task.command.value = "echo CoarseGrainedExecutorBackend --executor-id 1"
            try await agent.launch(task)
            var environment = await agent.environment()
            environment["MESOS_HTTP_COMMAND_EXECUTOR"] = "1"
            let launched = try Self.launch(
                environment, sandbox: sandbox, arguments: ["--launcher_dir=/usr/libexec/mesos", "--sandbox_directory=/mnt/mesos/sandbox"])
            let termination = await launched.child.wait()
            XCTAssertEqual(termination, .exited(0), launched.stderr)
            let states = await agent.state.updates(forTask: "spark-coarse").map(\.status.state)
            XCTAssertEqual(states, [.taskStarting, .taskRunning, .taskFinished])
            let output = try String(contentsOfFile: sandbox + "/tasks/spark-coarse/stdout", encoding: .utf8)
            XCTAssertEqual(output, "CoarseGrainedExecutorBackend --executor-id 1\n")
        }
    }
}
