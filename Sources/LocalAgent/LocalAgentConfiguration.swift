public import MesosProto

/// Everything a ``LocalAgent`` pretends to be: which agent, framework, executor and container it
/// serves, and the agent flags that change what the executor sees.
///
/// The defaults describe one CUSTOM executor of a non-checkpointing framework on an agent without
/// executor authentication, heartbeating every 30 minutes like the real agent.
public struct LocalAgentConfiguration: Sendable {
    /// Interface to listen on; the real agent's executors always reach it over an IP address.
    public var host: String = "127.0.0.1"
    /// TCP port; 0 picks a free one. A restarted agent comes back on the port it had.
    public var port: Int = 0
    /// Also serve `/slave(1)/api/v1/executor` on this unix domain socket (`MESOS_DOMAIN_SOCKET`).
    public var unixSocketPath: String?

    /// `AgentInfo.id`; also `MESOS_SLAVE_ID`.
    public var agentID: String = "local-agent-S0"
    /// `AgentInfo.hostname`.
    public var hostname: String = "localhost"
    /// The framework as the master knows it; `id` must be set.
    public var frameworkInfo: Mesos_V1_FrameworkInfo
    /// The executor the agent launched; `executor_id` and `framework_id` must be set.
    public var executorInfo: Mesos_V1_ExecutorInfo
    /// The executor's container id, sent in SUBSCRIBED.
    public var containerID: String = "local-container-0"
    /// Sandbox directory on the host (`MESOS_DIRECTORY`, `MESOS_SANDBOX`).
    public var sandboxDirectory: String = "/tmp"

    /// When set, every call must carry `Authorization: Bearer <token>` (as an agent run with `--authenticate_http_executors`).
    public var authenticationToken: String?
    /// PEM certificate chain and private key: serve https (an agent built with SSL). The executor
    /// environment then carries `LIBPROCESS_SSL_ENABLED=1`.
    public var tlsCertificateChainFile: String?
    public var tlsPrivateKeyFile: String?
    /// Interval between HEARTBEAT events on a subscribed stream; the agent's constant is 30 minutes.
    public var heartbeatInterval: Duration = .seconds(30 * 60)
    /// `--executor_reregistration_timeout`: how long the agent stays RECOVERING after a restart,
    /// and `MESOS_SUBSCRIPTION_BACKOFF_MAX`.
    public var reregistrationTimeout: Duration = .seconds(2)
    /// `--recovery_timeout`, exported as `MESOS_RECOVERY_TIMEOUT`.
    public var recoveryTimeout: Duration = .seconds(15 * 60)
    /// `--executor_shutdown_grace_period`, unless `executorInfo.shutdown_grace_period` is set.
    public var executorShutdownGracePeriod: Duration = .seconds(5)

    /// A configuration with the default framework and executor.
    public init() {
        var framework = Mesos_V1_FrameworkInfo()
        framework.user = "root"
        framework.name = "local-framework"
        framework.id.value = "local-framework-0000"
        self.frameworkInfo = framework

        var executor = Mesos_V1_ExecutorInfo()
        executor.type = .custom
        executor.executorID.value = "local-executor"
        executor.frameworkID = framework.id
        executor.name = "local executor"
        executor.command.value = "true"
        self.executorInfo = executor
    }

    /// A framework id of its own, as a real master gives (its id plus a sequence number): executors
    /// of local agents that run side by side then never share an identity (their cgroups are named
    /// after it).
    public mutating func useUniqueFrameworkID() {
        frameworkID = "local-framework-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))-0000"
    }

    /// `FrameworkInfo.id.value`.
    public var frameworkID: String {
        get { frameworkInfo.id.value }
        set {
            frameworkInfo.id.value = newValue
            executorInfo.frameworkID.value = newValue
        }
    }

    /// `ExecutorInfo.executor_id.value`.
    public var executorID: String {
        get { executorInfo.executorID.value }
        set { executorInfo.executorID.value = newValue }
    }

    /// `FrameworkInfo.checkpoint`: whether the executor survives an agent restart.
    public var checkpoint: Bool {
        get { frameworkInfo.checkpoint }
        set { frameworkInfo.checkpoint = newValue }
    }

    /// The framework's capabilities, such as `.taskKillingState` and `.partitionAware`.
    public var frameworkCapabilities: [Mesos_V1_FrameworkInfo.Capability.TypeEnum] {
        get { frameworkInfo.capabilities.map(\.type) }
        set {
            frameworkInfo.capabilities = newValue.map { type in
                var capability = Mesos_V1_FrameworkInfo.Capability()
                capability.type = type
                return capability
            }
        }
    }

    func hasCapability(_ type: Mesos_V1_FrameworkInfo.Capability.TypeEnum) -> Bool {
        frameworkInfo.capabilities.contains { $0.type == type }
    }

    /// The grace period the agent gives the executor after SHUTDOWN.
    var effectiveShutdownGracePeriod: Duration {
        guard executorInfo.hasShutdownGracePeriod else { return executorShutdownGracePeriod }
        return .nanoseconds(executorInfo.shutdownGracePeriod.nanoseconds)
    }
}
