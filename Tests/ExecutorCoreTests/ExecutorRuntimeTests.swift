import AgentConnection
import ExecutorCore
import Foundation
import LocalAgent
import Logging
import MesosCodec
import MesosProto
import TaskRunning
import Testing

/// The runtime alone: a scripted ``TaskRunner`` stands in for the command and closure runners, the
/// local agent (real HTTP over loopback) for the Mesos agent. What each task does is its data.
@Suite struct ExecutorRuntimeTests {
    /// Runs each task as its data says: `finish`, `fail`, `refuse` (cannot start), `invalid`, or
    /// `wait` (running until stopped; it ends as the stop request asks).
    struct ScriptedRunner: TaskRunner {
        func run(_ task: Mesos_V1_TaskInfo, control: TaskControl) async -> TaskOutcome {
            switch String(decoding: task.data, as: UTF8.self) {
            case "finish":
                await control.started()
                return .succeeded(data: Array("result of \(task.taskID.value)".utf8), message: "done")
            case "fail":
                await control.started()
                return .failed(reason: .commandExecutorFailed, message: "failed on purpose")
            case "refuse":
                return .launchFailed(reason: .containerLaunchFailed, message: "cannot start")
            case "wait":
                await control.started()
                for await request in control.stopRequestStream() {
                    return .failed(reason: .commandExecutorFailed, message: "stopped: \(request)")
                }
                return .failed(reason: .commandExecutorFailed, message: "stop requests ended")
            default:
                return .error(reason: .taskInvalid, message: "unknown script")
            }
        }
    }

    @Test(arguments: [WireEncoding.protobuf, .json])
    func everyTaskEndsOnceWithItsStateAndEveryUpdateIsAcknowledged(encoding: WireEncoding) async throws {
        var configuration = LocalAgentConfiguration()
        configuration.useUniqueFrameworkID()
        configuration.sandboxDirectory = NSTemporaryDirectory()
        try await withLocalAgent(configuration) { agent in
            var environment = await agent.environment()
            environment["SPARK_MESOS_EXECUTOR_ENCODING"] = encoding.rawValue
            let executorConfiguration = try ExecutorConfiguration(
                environment: environment, workingDirectory: NSTemporaryDirectory())
            var logger = Logger(label: "runtime-under-test")
            logger.logLevel = .critical
            let scripts = ["a": "finish", "b": "fail", "c": "refuse", "d": "invalid", "e": "wait"]
            for (id, script) in scripts.sorted(by: { $0.key < $1.key }) {
                try await agent.launch(agent.makeTask(id, data: Array(script.utf8)))
            }
            let code = try await withAgentClient(executorConfiguration.agentClient) { client in
                let runtime = ExecutorRuntime(
                    configuration: executorConfiguration, client: client, runner: ScriptedRunner(), logger: logger)
                return try await withThrowingTaskGroup(of: Int32?.self) { group in
                    group.addTask { await runtime.run() }
                    group.addTask {
                        try await agent.waitUntil("e running") { $0.taskStates["e"] == .taskRunning }
                        await agent.kill(taskID: "e")
                        try await agent.waitUntil("every task ended and acknowledged") { state in
                            scripts.keys.allSatisfy { state.taskStates[$0]?.isTerminal == true }
                                && state.updates.allSatisfy(\.acknowledged)
                        }
                        await agent.shutdown()
                        return nil
                    }
                    var code: Int32 = -1
                    for try await result in group { if let result { code = result } }
                    return code
                }
            }
            #expect(code == 0)
            let state = await agent.state
            #expect(
                state.taskStates == [
                    "a": .taskFinished, "b": .taskFailed, "c": .taskFailed, "d": .taskError, "e": .taskKilled,
                ])
            // Exactly one terminal update per task; RUNNING only for tasks that started.
            for id in scripts.keys {
                let states = state.updates(forTask: id).map(\.status.state)
                #expect(states.filter(\.isTerminal).count == 1, "\(id): \(states)")
                #expect(states.contains(.taskRunning) == ["a", "b", "e"].contains(id), "\(id): \(states)")
                #expect(state.updates(forTask: id).allSatisfy { $0.duplicates == 0 }, "\(id)")
            }
            #expect(state.updates(forTask: "a").last?.status.data == Data("result of a".utf8))
            #expect(state.updates(forTask: "d").last?.status.reason == .taskInvalid)
            #expect(state.violations.isEmpty, "\(state.violations)")
        }
    }
}
