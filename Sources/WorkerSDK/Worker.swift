import WorkerWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A worker program: named closures the executor can run, served over the worker pipes.
///
/// ```swift
/// var worker = Worker(name: "my-worker")
/// worker.register("echo") { payload in payload }
/// worker.run()  // or, from an async main: exit(await worker.serve())
/// ```
///
/// The executor starts the program with the executor→worker pipe on fd 3 and the worker→executor
/// pipe on fd 4; stdout and stderr go to log files in the sandbox, so printing is fine.
public struct Worker: Sendable {
    /// A closure the executor can run: payload in, result out. Throwing fails the run with the
    /// error's text; the closure is cancelled (Swift `Task` cancellation) when the executor asks.
    public typealias Function = @Sendable ([UInt8]) async throws -> [UInt8]

    /// The name the worker gives in its hello (shown in the executor's messages).
    public let name: String
    private var functions: [String: Function] = [:]

    /// A worker with no functions yet.
    public init(name: String) {
        self.name = name
    }

    /// Offers `body` under `function`; a second registration of the same name replaces the first.
    public mutating func register(_ function: String, _ body: @escaping Function) {
        functions[function] = body
    }

    /// The registered function names, sorted (as the hello lists them).
    var functionNames: [String] { functions.keys.sorted() }

    /// Says hello, runs what the executor sends until it closes the pipe, and returns the exit
    /// status for the process: 0 after a clean end, 1 if the executor's messages could not be read.
    ///
    /// - Parameters:
    ///   - concurrency: how many closures run at once; later runs wait in arrival order.
    ///   - input: the executor→worker descriptor.
    ///   - output: the worker→executor descriptor.
    public func serve(concurrency: Int = 1, input: Int32 = 3, output: Int32 = 4) async -> Int32 {
        let serving = beginServing(concurrency: concurrency, input: input, output: output)
        serving.reader.startThread()
        return await runAll(serving)
    }

    /// One serving of the pipes: the hello is sent, the executor's messages are read by `reader`
    /// (once it is given a thread) into `runs`.
    struct Serving: Sendable {
        let width: Int
        let writer: FrameWriter
        let registry: RunRegistry
        let runs: AsyncStream<[RunRequest]>
        let reader: PipeReader

        /// The stream the reader hands runs over by (one place, so the fork server's rehearsal
        /// sets up exactly the type a worker uses).
        static func makeRunStream() -> (AsyncStream<[RunRequest]>, AsyncStream<[RunRequest]>.Continuation) {
            AsyncStream.makeStream(of: [RunRequest].self)
        }
    }

    func beginServing(
        concurrency: Int, input: Int32, output: Int32, holdLimit: Duration = FrameWriter.defaultHoldLimit
    ) -> Serving {
        let width = max(1, concurrency)
        // A vanished executor must end the worker through EPIPE, not kill it mid-write.
        signal(SIGPIPE, SIG_IGN)
        let writer = FrameWriter(descriptor: output, holdLimit: holdLimit)
        writer.send(
            .hello(
                WorkerHello(
                    workerName: name, functions: functionNames, concurrency: UInt32(clamping: width))))
        let registry = RunRegistry()
        let (runs, continuation) = Serving.makeRunStream()
        let reader = PipeReader(descriptor: input, registry: registry, runs: continuation)
        return Serving(width: width, writer: writer, registry: registry, runs: runs, reader: reader)
    }

    /// Runs what the reader hands over until the executor closes the pipe; returns the exit
    /// status (see ``serve(concurrency:input:output:)``).
    func runAll(_ serving: Serving) async -> Int32 {
        let (width, writer, registry) = (serving.width, serving.writer, serving.registry)
        await withTaskGroup(of: Void.self) { group in
            var active = 0
            for await batch in serving.runs {
                if width == 1 {
                    await executeInOrder(batch[...], registry: registry, writer: writer)
                    continue
                }
                for run in batch {
                    if active >= width {
                        await group.next()
                        active -= 1
                    }
                    active += 1
                    // The child task is the run's own: cancelling it cancels this run alone.
                    group.addTask { await self.execute(run, registry: registry, writer: writer) }
                }
            }
        }
        let failure = serving.reader.join()
        writer.finish()
        if let failure {
            var text = "worker \(name): \(failure)\n"
            text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
            return 1
        }
        return 0
    }

    /// Runs `runs` one at a time, in order, in as few tasks as cancellation allows: one task for
    /// the runs of a batch (a task per run cost a worker about a fifth of its time on mini-tasks)
    /// until a run is cancelled, which cancels the task that ran it for good, so the runs after it
    /// get a fresh task. A mini-task's result with another run queued behind it may wait (briefly)
    /// to go out with the next.
    private func executeInOrder(_ runs: ArraySlice<RunRequest>, registry: RunRegistry, writer: FrameWriter) async {
        var runs = runs
        while !runs.isEmpty {
            let pending = runs
            // Started immediately: the runs go on this thread up to a closure's first suspension,
            // so closures that never suspend (most do not) cost no hand-off to another thread.
            let task = Task.immediate {
                var done = 0
                for index in pending.indices {
                    let run = pending[index]
                    let resultMayWait = run.resultMayWait && index < pending.endIndex - 1
                    await self.execute(run, registry: registry, writer: writer, resultMayWait: resultMayWait)
                    done += 1
                    if Task.isCancelled { break }
                }
                return done
            }
            runs = runs.dropFirst(await task.value)
        }
    }

    /// Runs `run`'s closure in the current task, which must be the run's alone for as long as it
    /// runs: a cancel of the run cancels the current task.
    private func execute(_ run: RunRequest, registry: RunRegistry, writer: FrameWriter, resultMayWait: Bool = false)
        async
    {
        let cancellation = RunCancellation()
        guard registry.begin(run.id, cancel: { cancellation.cancel() }) else {
            writer.send(
                .result(RunResult(id: run.id, status: .cancelled, error: "cancelled before it started")),
                mayWait: resultMayWait)
            return
        }
        guard let body = functions[run.function] else {
            registry.end(run.id)
            let offered = functions.keys.sorted().joined(separator: ", ")
            writer.send(
                .result(
                    RunResult(
                        id: run.id, status: .unknownFunction,
                        error: "worker '\(name)' has no function '\(run.function)' (it offers: \(offered))")),
                mayWait: resultMayWait)
            return
        }
        let context = RunContext(
            taskID: run.taskID, environment: run.environment,
            progress: ProgressReporter(runID: run.id, writer: writer))
        let outcome: RunResult
        do {
            let data = try await cancellation.whileRunning {
                try await WorkerContext.$run.withValue(context) { try await body(run.payload) }
            }
            outcome = RunResult(id: run.id, status: .ok, data: data)
        } catch is CancellationError {
            outcome = RunResult(id: run.id, status: .cancelled, error: "cancelled")
        } catch {
            outcome = RunResult(id: run.id, status: .error, error: String(describing: error))
        }
        registry.end(run.id)
        writer.send(.result(outcome), mayWait: resultMayWait)
    }
}

/// What a running closure may want to know about its run.
public enum WorkerContext {
    /// The closure's extra environment (`Closure.environment` / `MiniTask.environment`).
    public static var environment: [String: String] { run?.environment ?? [:] }
    /// The Mesos task id or mini-task id of the run.
    public static var taskID: String { run?.taskID ?? "" }

    /// Tells the framework how far the running closure got: `fraction` from 0 to 1 (clamped) and
    /// a short message. Call it as often as is convenient: the executor forwards the newest report
    /// at most every 100 ms per task (as an executor MESSAGE, see the README) and none after the
    /// task ended; mini-tasks' reports are not forwarded. Outside a closure it does nothing.
    public static func reportProgress(_ fraction: Double, message: String = "") {
        run?.progress.report(fraction, message: message)
    }

    /// The run the current task executes: one task-local for all it describes, so that starting a
    /// run binds one value (each binding is an allocation in the task and a push and a pop).
    @TaskLocal static var run: RunContext?
}

/// What ``WorkerContext`` tells a closure about its run.
struct RunContext: Sendable {
    let taskID: String
    let environment: [String: String]
    let progress: ProgressReporter
}

/// Sends one run's progress reports to the executor.
struct ProgressReporter: Sendable {
    let runID: UInt64
    let writer: FrameWriter

    func report(_ fraction: Double, message: String) {
        let clamped = fraction.isNaN ? 0 : min(1, max(0, fraction))
        writer.send(.progress(RunProgress(id: runID, fraction: clamped, message: message)))
    }
}

/// An error with a plain message, for closures that fail with text of their own.
public struct WorkerFailure: Error, Sendable, CustomStringConvertible {
    public let description: String

    public init(_ message: String) {
        description = message
    }
}
