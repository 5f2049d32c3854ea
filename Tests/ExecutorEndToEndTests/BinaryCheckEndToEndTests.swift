import Foundation
import LocalAgent
import MesosCodec
import MesosProto
import ProcessSupervision
import SystemTestLock
import Testing

/// The real binary standing in for Mesos's command executor runs a health-checked task.
@Suite(.serialized, .systemTest)
struct BinaryCheckEndToEndTests {
    @Test func standInKillsAnUnhealthyCommandTask() async throws {
        try await ExecutorUnderTest.withSandbox { sandbox in
            var configuration = LocalAgentConfiguration()
            configuration.sandboxDirectory = sandbox
            var capability = Mesos_V1_FrameworkInfo.Capability()
            capability.type = .taskKillingState
            configuration.frameworkInfo.capabilities = [capability]
            try await withLocalAgent(configuration) { agent in
                _ = FileManager.default.createFile(atPath: sandbox + "/healthy", contents: Data())
                var task = agent.makeTask("service")
                task.command.value = "exec sleep 600"
                task.killPolicy.gracePeriod.nanoseconds = Duration.seconds(30).nanosecondsCount
                task.healthCheck.type = .command
                // The check runs in the sandbox with the task's environment.
                task.healthCheck.command.value = #"test -e "$MESOS_SANDBOX/healthy" && test "$LEVEL" = high"#
                task.command.environment.variables = [
                    {
                        var variable = Mesos_V1_Environment.Variable()
                        variable.name = "LEVEL"
                        variable.value = "high"
                        return variable
                    }()
                ]
                task.healthCheck.delaySeconds = 0
                task.healthCheck.intervalSeconds = 0.1
                task.healthCheck.timeoutSeconds = 60
                task.healthCheck.consecutiveFailures = 2
                try await agent.launch(task)
                var environment = await agent.environment()
                environment["MESOS_HTTP_COMMAND_EXECUTOR"] = "1"
                let launched = try BinaryEndToEndTests.launch(environment, sandbox: sandbox)
                try await agent.waitUntil("service healthy") { state in
                    state.updates(forTask: "service").contains { $0.status.hasHealthy && $0.status.healthy }
                }
                try FileManager.default.removeItem(atPath: sandbox + "/healthy")
                let termination = await launched.child.wait()
                #expect(termination == .exited(0), "\(launched.stderr)")
                let updates = await agent.state.updates(forTask: "service").map(\.status)
                #expect(
                    updates.map(\.state) == [
                        .taskStarting, .taskRunning, .taskRunning, .taskRunning, .taskRunning, .taskKilling,
                        .taskKilled,
                    ], "\(launched.stderr)")
                #expect(
                    updates.filter { $0.reason == .taskHealthCheckStatusUpdated }.map(\.healthy)
                        == [true, false, false])
                #expect(updates.last?.healthy == false)
                #expect(updates.allSatisfy { $0.hasCheckStatus == false })
                let violations = await agent.state.violations
                #expect(violations.count == 0, "\(violations)")
            }
        }
    }
}
