/// Every variable of its environment the executor reads: the one table that `ExecutorConfiguration`
/// reads them through and `--help` lists. A variable read anywhere else is a bug.
public enum EnvironmentVariable: String, CaseIterable, Sendable {
    case frameworkID = "MESOS_FRAMEWORK_ID"
    case executorID = "MESOS_EXECUTOR_ID"
    case agentEndpoint = "MESOS_AGENT_ENDPOINT"
    case agentPID = "MESOS_SLAVE_PID"
    case domainSocket = "MESOS_DOMAIN_SOCKET"
    case sandbox = "MESOS_SANDBOX"
    case directory = "MESOS_DIRECTORY"
    case agentID = "MESOS_SLAVE_ID"
    case checkpoint = "MESOS_CHECKPOINT"
    case recoveryTimeout = "MESOS_RECOVERY_TIMEOUT"
    case subscriptionBackoffMax = "MESOS_SUBSCRIPTION_BACKOFF_MAX"
    case shutdownGracePeriod = "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD"
    case authenticationToken = "MESOS_EXECUTOR_AUTHENTICATION_TOKEN"
    case commandExecutor = "MESOS_HTTP_COMMAND_EXECUTOR"
    case sslEnabled = "LIBPROCESS_SSL_ENABLED"
    case sslVerifyCertificate = "LIBPROCESS_SSL_VERIFY_CERT"
    case sslCAFile = "LIBPROCESS_SSL_CA_FILE"
    case encoding = "SPARK_MESOS_EXECUTOR_ENCODING"
    case cgroups = "SPARK_MESOS_EXECUTOR_CGROUPS"
    case cgroupParent = "SPARK_MESOS_EXECUTOR_CGROUP_PARENT"
    case cgroupsEnableCFS = "SPARK_MESOS_EXECUTOR_CGROUPS_ENABLE_CFS"
    case logMaxSize = "SPARK_MESOS_EXECUTOR_LOG_MAX_SIZE"
    case logMaxFiles = "SPARK_MESOS_EXECUTOR_LOG_MAX_FILES"
    case idleReclaim = "SPARK_MESOS_EXECUTOR_IDLE_RECLAIM"
    case cacheDirectory = "SPARK_MESOS_EXECUTOR_CACHE_DIR"
    case fetchMinimumFreeBytes = "SPARK_MESOS_EXECUTOR_FETCH_MIN_FREE_BYTES"
    case sparkExecutorURI = "SPARK_EXECUTOR_URI"
    case hadoopHome = "HADOOP_HOME"
    case path = "PATH"

    /// The variable's name in the environment.
    public var name: String { rawValue }

    /// What it means, for `--help`.
    public var meaning: String {
        switch self {
        case .frameworkID: "framework id (required)"
        case .executorID: "executor id (required)"
        case .agentEndpoint: "agent ip:port (required unless MESOS_SLAVE_PID or MESOS_DOMAIN_SOCKET is set)"
        case .agentPID: "agent libprocess pid, e.g. slave(1)@10.0.0.5:5051 (fallback for the endpoint)"
        case .domainSocket: "unix socket of the agent's executor API (used instead of TCP when set)"
        case .sandbox: "sandbox directory (default: MESOS_DIRECTORY, then the working directory)"
        case .directory: "sandbox path on the host"
        case .agentID: "agent id"
        case .checkpoint: "\"1\" when the framework checkpoints (re-subscribe after agent restarts), else \"0\""
        case .recoveryTimeout: "how long to try re-subscribing, e.g. 15mins (required when checkpointing)"
        case .subscriptionBackoffMax:
            "max delay between re-subscribe attempts, e.g. 2secs (required when checkpointing)"
        case .shutdownGracePeriod: "time from SHUTDOWN to forced kill, e.g. 5secs (default 5secs)"
        case .authenticationToken: "bearer token sent on every call (removed from the tasks' environment)"
        case .commandExecutor:
            "\"1\": stand in for Mesos's command executor (the agent fetched the task's URIs; exit after the task)"
        case .sslEnabled: "\"1\"/\"true\": talk https to the agent"
        case .sslVerifyCertificate: "\"1\"/\"true\": verify the agent's certificate"
        case .sslCAFile: "CA bundle for verifying the agent"
        case .encoding: "\"protobuf\" (default) or \"json\" for calls and events (--encoding overrides)"
        case .cgroups: "\"auto\" (default): a cgroup per task and worker where possible; \"off\": none"
        case .cgroupParent: "cgroup path to nest the executor's cgroup under (default: its own cgroup)"
        case .cgroupsEnableCFS: "\"1\": cap CPU time at the task's cpus (CFS quota); default \"0\""
        case .logMaxSize:
            "largest stdout/stderr file of a task or worker before it is rotated, e.g. 10MB (default 10MB, at least 4KB)"
        case .logMaxFiles: "rotated files kept per stream (stdout.1 newest … stdout.N), 0 keeps none (default 5)"
        case .idleReclaim:
            "\"1\" (default): give back the executor's code pages when idle; \"0\": keep them (freed heap is always given back)"
        case .cacheDirectory: "package cache directory (default /var/cache/spark-mesos-executor; --cache-dir overrides)"
        case .fetchMinimumFreeBytes:
            "free space (bytes) every package download leaves on its filesystem; default the larger of 1 GiB and 5 %; 0 keeps none"
        case .sparkExecutorURI: "the Spark package when ExecutorInfo.data and --conf have no spark.executor.uri"
        case .hadoopHome: "where bin/hadoop is, for hdfs:// and s3*:// URIs"
        case .path: "searched for hadoop when HADOOP_HOME is not set"
        }
    }
}
