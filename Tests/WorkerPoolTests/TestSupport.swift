import Foundation
import MesosProto
import SwiftProtobuf
import Synchronization
import TemporaryDirectory
import Testing
import WorkerPool
import WorkerProtocol

@testable import SparkExecutor
@testable import TaskRunning

/// The demo worker binary, built next to the test bundle (the test target depends on it), or the
/// one named by `DEMO_WORKER` (benchmarks use a `--static-swift-stdlib` build).
func demoWorkerPath() throws -> String {
    if let override = ProcessInfo.processInfo.environment["DEMO_WORKER"] { return override }
    let executable = try #require(
        try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe"), "cannot read /proc/self/exe")
    let directory = (executable as NSString).deletingLastPathComponent
    let path = directory + "/demo-worker"
    try #require(
        FileManager.default.isExecutableFile(atPath: path),
        "no demo-worker at \(path): run `swift build --product demo-worker`")
    return path
}

/// Runs `body` with a new empty sandbox, removed once `body` has returned or thrown: the pool and
/// workers that use it must have ended by then.
@discardableResult
func withSandbox<Result>(
    isolation: isolated (any Actor)? = #isolation, _ body: (String) async throws -> Result
) async throws -> Result {
    try await withTemporaryDirectory(prefix: "worker-pool-test.", body)
}

/// Fine mode spawning every worker, fine mode forking them from a fork server, coarse mode.
enum PoolMode: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case fine
    case forked
    case coarse
    var testDescription: String { rawValue }

    var configurationMode: WorkerPoolConfiguration.Mode {
        switch self {
        case .fine, .forked: .fine(maximumWorkers: 8)
        case .coarse: .coarse(workers: 2)
        }
    }
}

func poolConfiguration(
    _ mode: PoolMode, environment: [String: String] = [:], helloTimeout: Duration = .seconds(20)
) throws -> WorkerPoolConfiguration {
    var configuration = try poolConfiguration(
        mode.configurationMode, environment: environment, helloTimeout: helloTimeout)
    configuration.forkServer = mode == .forked
    return configuration
}

/// Without a sandbox: ``withPool(_:_:)`` gives the pool one.
func poolConfiguration(
    _ mode: WorkerPoolConfiguration.Mode, environment: [String: String] = [:], helloTimeout: Duration = .seconds(20)
) throws -> WorkerPoolConfiguration {
    WorkerPoolConfiguration(
        program: try demoWorkerPath(), sandbox: "", mode: mode, environment: environment, helloTimeout: helloTimeout)
}

/// `withPool`, with a closure task runner on the pool.
func withRunner<T: Sendable>(
    _ configuration: WorkerPoolConfiguration, _ body: (WorkerPool, ClosureTaskRunner) async throws -> T
) async throws -> T {
    try await withPool(configuration) { pool in
        try await body(pool, ClosureTaskRunner(pool: pool, sandbox: pool.configuration.sandbox))
    }
}

/// Runs `body` with a live pool, then shuts it down and waits until every worker has ended.
/// A fine-mode pool's fork server has started (or been given up) before `body` runs.
/// A configuration without a sandbox gets a new one, removed once the pool has ended; a test that
/// looks into the sandbox after that gives one of its own (``withSandbox(isolation:_:)``).
func withPool<T: Sendable>(
    _ configuration: WorkerPoolConfiguration, _ body: (WorkerPool) async throws -> T
) async throws -> T {
    guard !configuration.sandbox.isEmpty else {
        return try await withSandbox { sandbox in
            var configuration = configuration
            configuration.sandbox = sandbox
            return try await withPool(configuration, body)
        }
    }
    let pool = WorkerPool(configuration: configuration)
    return try await withThrowingTaskGroup(of: Void.self) { group in
        group.addTask { await pool.run() }
        _ = await pool.forkServerStarted()
        do {
            let result = try await body(pool)
            await pool.shutdown()
            try await group.waitForAll()
            return result
        } catch {
            await pool.shutdown()
            try? await group.waitForAll()
            throw error
        }
    }
}

func closureTask(
    _ id: String, _ function: String, _ payload: String, environment: [String: String] = [:]
) -> Mesos_V1_TaskInfo {
    var closure = Sparkmesos_Worker_V1_Closure()
    closure.environment = environment
    closure.function = function
    closure.payload = Data(payload.utf8)
    var task = Mesos_V1_TaskInfo()
    task.taskID.value = id
    task.name = id
    task.data = try! closure.serializedData()
    return task
}

/// A task being run: its outcome, and a way to wait until it started and to stop it.
struct RunningTask: Sendable {
    let control: TaskControl
    let started: AsyncStream<Void>
    let outcome: Task<TaskOutcome, Never>

    func waitUntilStarted() async {
        for await _ in started { return }
    }
}

func start(_ runner: ClosureTaskRunner, _ task: Mesos_V1_TaskInfo) -> RunningTask {
    let (started, continuation) = AsyncStream.makeStream(of: Void.self)
    let control = TaskControl(onStarted: { continuation.yield() })
    let outcome = Task {
        let outcome = await runner.run(task, control: control)
        control.finish()
        continuation.finish()
        return outcome
    }
    return RunningTask(control: control, started: started, outcome: outcome)
}

/// Starts closure task `id`, whose function tells the FIFO in `DEMO_READY_FIFO` once it runs
/// (`hang`, `busy`), and returns when it has.
func startRunning(
    _ runner: ClosureTaskRunner, _ id: String, _ function: String, _ payload: String
) async throws -> RunningTask {
    let fifo = try ReadyFIFO(in: runner.sandbox)
    let task = start(runner, closureTask(id, function, payload, environment: ["DEMO_READY_FIFO": fifo.path]))
    await fifo.wait()
    return task
}

func run(_ runner: ClosureTaskRunner, _ task: Mesos_V1_TaskInfo) async -> TaskOutcome {
    await start(runner, task).outcome.value
}

extension TaskOutcome {
    var text: String {
        switch self {
        case .succeeded(let data, let message, _):
            "succeeded(\(data.map { String(decoding: $0, as: UTF8.self) } ?? "nil"), \(message ?? ""))"
        case .failed(let reason, let message): "failed(\(reason), \(message))"
        case .error(let reason, let message): "error(\(reason), \(message))"
        case .launchFailed(let reason, let message): "launchFailed(\(reason), \(message))"
        }
    }
}

/// A FIFO a closure writes to once it runs; `wait()` blocks (on a thread of its own) for that byte.
struct ReadyFIFO {
    let path: String

    init(in directory: String) throws {
        path = directory + "/ready.fifo"
        try #require(mkfifo(path, 0o600) == 0, "mkfifo failed")
    }

    func wait() async {
        let path = self.path
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            Thread.detachNewThread {
                let fd = open(path, O_RDONLY)
                var byte: UInt8 = 0
                _ = read(fd, &byte, 1)
                close(fd)
                continuation.resume()
            }
        }
    }
}
