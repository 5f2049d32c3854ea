import Foundation
import MesosCodec
public import MesosProto

extension LocalAgentConfiguration {
    /// The host's default PATH the agent sets when nothing else does.
    static let defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

    /// Exactly the variables a real agent gives an executor (the agent's `executorEnvironment()` plus the containerizer's) for an agent at `host:port`.
    func executorEnvironment(port: Int, sandboxDirectory: String) -> [String: String] {
        var environment: [String: String] = [
            "MESOS_FRAMEWORK_ID": frameworkID,
            "MESOS_EXECUTOR_ID": executorID,
            "MESOS_AGENT_ENDPOINT": "\(host):\(port)",
            "MESOS_SLAVE_ID": agentID,
            "MESOS_SLAVE_PID": "slave(1)@\(host):\(port)",
            "MESOS_DIRECTORY": sandboxDirectory,
            "MESOS_SANDBOX": sandboxDirectory,
            "MESOS_CHECKPOINT": checkpoint ? "1" : "0",
            "MESOS_HTTP_COMMAND_EXECUTOR": "0",
            "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": MesosDuration.format(effectiveShutdownGracePeriod),
            "LIBPROCESS_PORT": "0",
            "PATH": Self.defaultPath,
        ]
        if checkpoint {
            environment["MESOS_RECOVERY_TIMEOUT"] = MesosDuration.format(recoveryTimeout)
            environment["MESOS_SUBSCRIPTION_BACKOFF_MAX"] = MesosDuration.format(reregistrationTimeout)
        }
        if let authenticationToken {
            environment["MESOS_EXECUTOR_AUTHENTICATION_TOKEN"] = authenticationToken
        }
        if tlsCertificateChainFile != nil {
            environment["LIBPROCESS_SSL_ENABLED"] = "1"
        }
        if let unixSocketPath {
            environment["MESOS_DOMAIN_SOCKET"] = unixSocketPath
        }
        // The executor's own command environment overrides everything (VALUE variables only).
        for variable in executorInfo.command.environment.variables where variable.type != .secret {
            environment[variable.name] = variable.value
        }
        return environment
    }
}

extension LocalAgent {
    /// The environment a real agent would give the executor it launched; pass it to the executor
    /// process (with nothing else from the test's own environment, as the Mesos containerizer does).
    public func environment(sandboxDirectory: String? = nil) -> [String: String] {
        configuration.executorEnvironment(
            port: port,
            sandboxDirectory: sandboxDirectory ?? configuration.sandboxDirectory
        )
    }

    /// A minimal valid TaskInfo for this agent and executor (name = id), for tests.
    public nonisolated func makeTask(_ taskID: String, data: [UInt8] = []) -> Mesos_V1_TaskInfo {
        var task = Mesos_V1_TaskInfo()
        task.name = taskID
        task.taskID.value = taskID
        task.agentID.value = configuration.agentID
        task.executor = configuration.executorInfo
        if !data.isEmpty { task.data = .init(data) }
        return task
    }
}
