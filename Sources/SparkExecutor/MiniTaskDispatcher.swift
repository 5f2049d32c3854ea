public import TaskRunning
public import WorkerPool
import WorkerProtocol
import WorkerWire

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Runs mini-tasks, closures that come in framework MESSAGEs rather than as Mesos tasks, on the
/// pool (pipelined on warm workers in coarse mode), and sends their results back as executor
/// MESSAGEs: `MiniTaskResults`, in the encoding (protobuf or JSON) of the batch they came in.
///
/// Results are sent as they finish: while one message is on its way, the results finishing
/// meanwhile gather into the next, so a fast stream costs few messages and a lone result waits
/// for none.
public struct MiniTaskDispatcher: Sendable {
    public let pool: WorkerPool
    /// Where results larger than `resultSizeLimit` are written (under `results/`).
    public let sandbox: String
    public let resultSizeLimit: Int
    /// A result message is split once it would exceed this many bytes.
    public let maximumMessageSize: Int
    private let send: @Sendable ([UInt8]) async -> Void

    /// - Parameter send: sends one executor MESSAGE (e.g. `ExecutorRuntime.sendMessage`).
    public init(
        pool: WorkerPool, sandbox: String, resultSizeLimit: Int = 64 * 1024, maximumMessageSize: Int = 1024 * 1024,
        send: @escaping @Sendable ([UInt8]) async -> Void
    ) {
        self.pool = pool
        self.sandbox = sandbox
        self.resultSizeLimit = resultSizeLimit
        self.maximumMessageSize = maximumMessageSize
        self.send = send
    }

    /// Handles one framework MESSAGE payload (a `MiniTaskBatch`); returns once every result of
    /// the batch has been sent. A payload that is no batch is answered with one LOST result with
    /// an empty id whose error says what is wrong. The payload is let go of once decoded: the
    /// mini-tasks' payloads are held by the pool's calls only while they wait.
    ///
    /// The result files the batch releases are removed first; a path that names none (outside
    /// `results`, say) is answered with a LOST result with an empty id that names it, and one
    /// already removed is no error (a message may come twice).
    public func handle(_ message: consuming [UInt8]) async {
        var batch: [MiniTask]
        let encoding: PayloadEncoding
        let release: [String]
        do {
            let parsed: MiniTaskBatch
            (parsed, encoding) = try MiniTaskBatch.parse(message)
            (batch, release) = (parsed.tasks, parsed.release)
        } catch {
            let result = MiniTaskResult(id: "", state: SparkTaskState.lost.rawValue, error: error.description)
            await send(MiniTaskResult.payload([result], PayloadEncoding.detect(message)))
            return
        }
        _ = consume message
        let store = LargeResults(sandbox: sandbox, limit: resultSizeLimit)
        var early: [MiniTaskResult] = []
        for path in release {
            if case .refused(let why) = store.release(path) {
                early.append(Self.result("", state: .lost, error: "not released: \(why)"))
            }
        }
        guard !batch.isEmpty else {
            if !early.isEmpty { await send(early, encoding) }
            return
        }
        var requests: [CallRequest] = []
        requests.reserveCapacity(batch.count)
        for task in batch {
            if task.function.isEmpty {
                early.append(Self.result(task.id, state: .failed, error: "mini-task '\(task.id)' has no function name"))
                continue
            }
            if let problem = MiniTask.environmentProblem(task.environment) {
                early.append(Self.result(task.id, state: .failed, error: "mini-task '\(task.id)': \(problem)"))
                continue
            }
            requests.append(
                CallRequest(
                    taskID: task.id, function: task.function, payload: task.payload, environment: task.environment))
        }
        batch = []
        guard !requests.isEmpty else { return await send(early, encoding) }
        // Refusals go out with the first results.
        var results = early
        let batchEndings = await pool.runPipelined(requests)
        // The pool holds the calls now, and each ending comes with its mini-task's id and function:
        // nothing of the batch stays here while it runs (a mini-task queued is held once).
        requests = []
        for await endings in batchEndings {
            results += endings.map { ending in
                Self.result(ending.taskID, function: ending.function, completion: ending.completion, store: store)
            }
            await send(results, encoding)
            results = []
        }
    }

    /// Sends results in as few messages as `maximumMessageSize` allows.
    private func send(_ results: [MiniTaskResult], _ encoding: PayloadEncoding) async {
        for chunk in chunks(results) {
            await send(MiniTaskResult.payload(chunk, encoding))
        }
    }

    private func chunks(_ results: [MiniTaskResult]) -> [[MiniTaskResult]] {
        var chunks: [[MiniTaskResult]] = [[]]
        var size = 0
        for result in results {
            // Protobuf size, near enough; JSON's base64 is larger, so leave it headroom.
            let estimate =
                result.id.utf8.count + result.data.count * 4 / 3 + result.error.utf8.count
                + result.dataFile.utf8.count + 32
            if size + estimate > maximumMessageSize && !chunks[chunks.count - 1].isEmpty {
                chunks.append([])
                size = 0
            }
            chunks[chunks.count - 1].append(result)
            size += estimate
        }
        return chunks
    }

    static func result(_ id: String, state: SparkTaskState, error: String) -> MiniTaskResult {
        MiniTaskResult(id: id, state: state.rawValue, error: error)
    }

    /// Spark's view: FINISHED, FAILED (the closure's fault), KILLED, LOST (the worker's fault).
    static func result(_ id: String, function: String, completion: CallCompletion, store: LargeResults)
        -> MiniTaskResult
    {
        switch completion {
        case .result(let run):
            switch run.status {
            case .ok:
                var result = MiniTaskResult(id: id, state: SparkTaskState.finished.rawValue)
                switch store.store(run.data, name: "mini-\(id)") {
                case .inline(let data): result.data = data
                case .file(let path, _): result.dataFile = path
                case .failed(let why): return Self.result(id, state: .failed, error: "large result not stored: \(why)")
                }
                return result
            case .error: return Self.result(id, state: .failed, error: "closure '\(function)' threw: \(run.error)")
            case .cancelled: return Self.result(id, state: .killed, error: "closure '\(function)' was cancelled")
            case .unknownFunction: return Self.result(id, state: .failed, error: run.error)
            }
        case .workerEnded(let why): return Self.result(id, state: .lost, error: why)
        case .memoryLimitReached(let limit):
            return Self.result(id, state: .lost, error: "its worker was stopped: \(limit.text)")
        case .unavailable(let why): return Self.result(id, state: .lost, error: why)
        case .cancelled(let why): return Self.result(id, state: .killed, error: why)
        }
    }
}

extension MiniTaskDispatcher {
    /// The answer to a batch that cannot run at all (no worker configured, package missing):
    /// one result with `state` and `error` for each of its mini-tasks, in the batch's encoding —
    /// or one with an empty id when the payload is no batch; none to a batch that only releases
    /// result files (no closure ran, so there are none).
    public static func failAll(_ message: [UInt8], state: SparkTaskState, error: String) -> [UInt8]? {
        var results = [result("", state: state, error: error)]
        if let (batch, _) = try? MiniTaskBatch.parse(message) {
            if !batch.tasks.isEmpty {
                results = batch.tasks.map { result($0.id, state: state, error: error) }
            } else if !batch.release.isEmpty {
                return nil
            }
        }
        return MiniTaskResult.payload(results, PayloadEncoding.detect(message))
    }
}
