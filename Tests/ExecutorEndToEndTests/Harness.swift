import AgentConnection
import ExecutorCore
import Foundation
import Isolation
import LocalAgent
import Logging
import MesosCodec
import MesosProto
import PackageFetch
import ProcessSupervision
import SparkExecutor
import SystemSupport
import TemporaryDirectory
import Testing

/// Runs the real executor runtime (in this process) against a local agent on loopback.
struct ExecutorUnderTest {
    let agent: LocalAgent
    let sandbox: String
    let runtime: ExecutorRuntime
    /// The executor's cgroups (nil when the machine has none usable, or the test asked for none).
    let isolation: CgroupIsolation?

    /// Runs `body` with a new empty sandbox, removed once `body` has returned or thrown: the agent,
    /// executor and tasks that use it must have ended by then.
    @discardableResult
    static func withSandbox<Result>(
        isolation: isolated (any Actor)? = #isolation, _ body: (String) async throws -> Result
    ) async throws -> Result {
        try await withTemporaryDirectory(prefix: sandboxPrefix, body)
    }

    /// ``withSandbox(isolation:_:)`` for a synchronous `body`.
    @discardableResult
    static func withSandbox<Result>(_ body: (String) throws -> Result) throws -> Result {
        try withTemporaryDirectory(prefix: sandboxPrefix, body)
    }

    private static let sandboxPrefix = "sme-e2e-"

    /// Runs `body` with an agent and an executor subscribed to it; returns the executor's exit code
    /// once both `body` and the executor are done (the body must make the executor finish).
    @discardableResult
    static func run(
        encoding: WireEncoding,
        checkpoint: Bool = false,
        capabilities: [Mesos_V1_FrameworkInfo.Capability.TypeEnum] = [],
        shutdownGrace: Duration = .seconds(5),
        properties: [String: String] = [:],
        adjust: @Sendable (inout LocalAgentConfiguration) -> Void = { _ in },
        environment extraEnvironment: [String: String] = [:],
        heartbeatInterval: Duration = .seconds(30 * 60),
        whenIdle: (@Sendable () -> Void)? = nil,
        idleSettle: Duration = .seconds(2),
        beforeSubscribe: @escaping @Sendable (LocalAgent) async throws -> Void = { _ in },
        waitForSubscription: Bool = true,
        cgroups: Bool = true,
        hardCPULimits: Bool = false,
        prepare: @escaping @Sendable (LocalAgent) async throws -> Void = { _ in },
        _ body: @escaping @Sendable (ExecutorUnderTest) async throws -> Void
    ) async throws -> Int32 {
        try await withSandbox { sandbox in
            var configuration = LocalAgentConfiguration()
            configuration.useUniqueFrameworkID()
            configuration.sandboxDirectory = sandbox
            configuration.frameworkInfo.checkpoint = checkpoint
            configuration.executorShutdownGracePeriod = shutdownGrace
            configuration.reregistrationTimeout = .seconds(2)
            if !properties.isEmpty {
                let json = try JSONSerialization.data(withJSONObject: properties, options: [.sortedKeys])
                configuration.executorInfo.data = json
            }
            adjust(&configuration)
            for capability in capabilities {
                var entry = Mesos_V1_FrameworkInfo.Capability()
                entry.type = capability
                configuration.frameworkInfo.capabilities.append(entry)
            }
            return try await withLocalAgent(configuration) { agent in
                try await prepare(agent)
                try await beforeSubscribe(agent)
                var environment = await agent.environment(sandboxDirectory: sandbox)
                environment["SPARK_MESOS_EXECUTOR_ENCODING"] = encoding.rawValue
                if !cgroups { environment["SPARK_MESOS_EXECUTOR_CGROUPS"] = "off" }
                if hardCPULimits { environment["SPARK_MESOS_EXECUTOR_CGROUPS_ENABLE_CFS"] = "1" }
                for (name, value) in extraEnvironment { environment[name] = value }
                let executorConfiguration = try ExecutorConfiguration(
                    environment: environment, workingDirectory: sandbox)
                var logger = Logger(label: "executor-under-test")
                logger.logLevel = ProcessInfo.processInfo.environment["E2E_LOG"] == nil ? .critical : .debug
                var fetcherConfiguration = FetcherConfiguration()
                fetcherConfiguration.cacheDirectory = sandbox + "/.cache"
                fetcherConfiguration.attempts = 1
                var options = ExecutorOptions()
                options.taskEnvironment = ["PATH": "/usr/bin:/bin"]
                options.heartbeatInterval = heartbeatInterval
                options.whenIdle = whenIdle
                options.idleSettle = idleSettle
                return try await withExecutor(
                    executorConfiguration, environment: environment, fetcher: fetcherConfiguration, logger: logger,
                    options: options
                ) { runtime, isolation in
                    if waitForSubscription {
                        try await agent.waitUntil("the executor subscribed") { $0.executorStatus == .subscribed }
                    }
                    try await body(
                        ExecutorUnderTest(agent: agent, sandbox: sandbox, runtime: runtime, isolation: isolation))
                }
            }
        }
    }

    /// Whether this machine gives an executor cgroups (root, a writable hierarchy): the cgroup tests
    /// need them and are skipped where it does not (the reason is printed). Found once, the way
    /// the executor finds them, with a cgroup of its own that it removes again.
    static let cgroupsUsable: Bool = {
        let settings = CgroupIsolation.Settings(name: "sme-e2e-cgroups-probe-\(getpid())")
        switch CgroupIsolation.detect(settings) {
        case .available(let isolation):
            isolation.removeAll()
            return true
        case .unavailable(let why):
            print("the cgroup tests are skipped: \(why)")
            return false
        }
    }()

    func task(_ id: String, _ shell: String, grace: Duration? = nil) -> Mesos_V1_TaskInfo {
        var task = agent.makeTask(id)
        task.command.value = shell
        if let grace { task.killPolicy.gracePeriod.nanoseconds = grace.nanosecondsCount }
        return task
    }

    /// Waits until the agent saw `state` for every task in `ids` and acknowledged everything.
    func waitForStates(_ expected: [String: Mesos_V1_TaskState], acknowledged: Bool = true) async throws {
        try await agent.waitUntil("states \(expected)") { state in
            expected.allSatisfy { state.taskStates[$0.key] == $0.value }
                && (!acknowledged || state.updates.allSatisfy { $0.acknowledged || $0.isFromAgent })
        }
    }

    func states(of id: String) async -> [Mesos_V1_TaskState] {
        await agent.state.updates(forTask: id).map(\.status.state)
    }

    func path(_ name: String) -> String { "\(sandbox)/\(name)" }

    func makeFIFO(_ name: String) { mkfifo(path(name), 0o644) }
}

/// Blocks (on a thread of its own, off the cooperative pool) until a task writes into the FIFO at
/// `path` and closes it; returns what it wrote.
func readFIFO(_ path: String) async -> String {
    await BlockingThread.run {
        let data = FileHandle(forReadingAtPath: path)?.readDataToEndOfFile() ?? Data()
        return String(decoding: data, as: UTF8.self)
    }
}

/// Waits until `pid` has exited, for up to a minute.
func processExits(_ pid: Int32) async -> Bool {
    await ProcessObservation.waitForExit(of: pid, timeoutMilliseconds: 60_000)
}

extension Trait where Self == ConditionTrait {
    /// The closure tests need the demo worker (built with this test target by `swift build --build-tests`).
    static var needsDemoWorker: Self {
        .enabled(
            if: FileManager.default.isExecutableFile(atPath: ClosureEndToEndTests.demoWorker),
            "demo-worker not built")
    }

    /// The cgroup tests need root and a writable cgroup hierarchy (``ExecutorUnderTest/cgroupsUsable``).
    static var needsCgroups: Self {
        .enabled(if: ExecutorUnderTest.cgroupsUsable, "no writable cgroup hierarchy here (see the printed reason)")
    }
}

func assertNoViolations(_ agent: LocalAgent, sourceLocation: SourceLocation = #_sourceLocation) async {
    let violations = await agent.state.violations
    #expect(violations.isEmpty, "protocol violations: \(violations)", sourceLocation: sourceLocation)
}
