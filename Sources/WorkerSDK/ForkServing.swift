import CForkServer
import SystemSupport
import WorkerWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension Worker {
    /// Runs the worker as the whole program, from a synchronous `main`, and exits when the executor
    /// is done with it. Prefer it to ``serve(concurrency:input:output:)``: when the executor starts
    /// the program as a fork server (fine mode), the process says so in its hello and then forks a
    /// fresh worker for every task, each already past program start, dynamic linking and whatever
    /// `main` did before calling `run` (register closures, load a model, warm a cache: do it first).
    ///
    /// ```swift
    /// @main enum MyWorker {
    ///     static func main() {
    ///         var worker = Worker(name: "my-worker")
    ///         worker.register("echo") { payload in payload }
    ///         worker.run()
    ///     }
    /// }
    /// ```
    ///
    /// Closures run on Swift's cooperative thread pool (in a forked worker, on the SDK's own pool
    /// of at most one thread per core, which starts fewer threads than libdispatch); the main
    /// actor is not served.
    public func run(concurrency: Int = 1) -> Never {
        if let variable = getenv(workerForkServerVariable) {
            let control = Int32(String(cString: variable)) ?? -1
            unsetenv(workerForkServerVariable)
            let threads = Self.threadCount()
            if threads > 1 {
                // A fork copies only the calling thread; locks other threads held stay locked in
                // every child. Serve as an ordinary worker: the executor then spawns each one.
                declineToFork("\(threads) threads before run()")
            } else if control > 4 && fcntl(control, F_GETFD) >= 0 {
                // No task has run (libdispatch would have started a thread), so Swift's default
                // executor can still be chosen: every forked worker inherits the choice.
                TaskThreads.installPool()
                rehearseAForkedWorker()
                let afterRehearsal = Self.threadCount()
                // (0: /proc could not be read, as for the count before.)
                guard afterRehearsal <= 1 else {
                    declineToFork("the rehearsal of a forked worker left \(afterRehearsal) threads")
                    serveThenExit(concurrency: concurrency)
                }
                serveForks(control: control, concurrency: concurrency)
                // Only a forked worker comes back here: it serves on a thread with fresh
                // thread-local state (the main thread's is a copy of the server's).
                let job = Unmanaged.passRetained(ServeJob(worker: self, concurrency: concurrency))
                let rc = cfs_run_on_new_thread(
                    { context in
                        let job = Unmanaged<ServeJob>.fromOpaque(context!).takeRetainedValue()
                        job.worker.serveThenExit(concurrency: job.concurrency)
                    }, job.toOpaque())
                fail("worker \(name): no thread for the forked worker (\(rc))")
            }
        }
        serveThenExit(concurrency: concurrency)
    }

    private func declineToFork(_ why: String) {
        let text = "worker \(name): \(why), so not a fork server\n"
        text.withCString { _ = write(2, $0, strlen($0)) }
    }

    /// Says hello as a fork server, then forks workers until the executor closes the control
    /// socket. Returns only in a forked worker.
    private func serveForks(control: Int32, concurrency: Int) {
        signal(SIGPIPE, SIG_IGN)
        var frame: [UInt8] = []
        let hello = WorkerHello(
            workerName: name, functions: functionNames, concurrency: UInt32(clamping: max(1, concurrency)),
            forkServer: true, forkServerJoinsCgroups: true, forkServerCreatesInCgroup: true)
        FromWorker.hello(hello).appendFrame(to: &frame)
        let written = frame.withUnsafeBytes { write(4, $0.baseAddress, $0.count) }
        guard written == frame.count else { fail("worker \(name): the fork server's hello failed (errno \(errno))") }
        close(3)
        close(4)
        let rc = cfs_serve(control)
        if rc == 1 { return }
        if rc == 0 { exit(0) }
        fail("worker \(name): the fork server stopped: errno \(-rc)")
    }

    /// Rehearses, once in the fork server, what every forked worker does first, so that the type
    /// metadata, conformances and lazily initialized globals it needs are set up here, in memory
    /// every fork inherits, rather than in each fork: they cost a forked worker about a tenth of
    /// its CPU (demangling type names, copied pages). A run is decoded and handed over through
    /// the serving's stream, a cancel goes through a registry of its own, then a whole serving of
    /// that run, of a closure of the rehearsal's own (`runAll`, `execute`, the result encoded),
    /// runs on this thread: its jobs go to an executor that runs them here, and none suspends, so
    /// no thread starts (the caller checks) and the server stays single-threaded.
    private func rehearseAForkedWorker() {
        let run = RunRequest(id: 1, taskID: "rehearsal", function: "rehearsal", payload: [0], environment: ["A": "B"])
        var bytes: [UInt8] = []
        ToWorker.run(run).appendFrame(to: &bytes)
        var decoder = FrameDecoder()
        bytes.withUnsafeBytes { decoder.feed($0) }
        let (runs, continuation) = Serving.makeRunStream()
        while let frame = try? decoder.next(), case .run(let decoded)? = try? ToWorker(decoding: frame) {
            continuation.yield([decoded])
        }
        continuation.finish()
        // The cancel's path, which the serving below does not take.
        let registry = RunRegistry()
        let cancellation = RunCancellation()
        if registry.begin(run.id, cancel: { cancellation.cancel() }) { registry.cancel(run.id) }
        registry.end(run.id)
        registry.cancelAll()

        // The serving, with its result written to /dev/null.
        let sink = open("/dev/null", O_WRONLY | O_CLOEXEC)
        guard sink >= 0 else { return }
        defer { close(sink) }
        var rehearsal = self
        rehearsal.register(run.function) { payload in payload }
        // The reader is never started: the stream already holds the run and has ended.
        let servingRegistry = RunRegistry()
        let serving = Serving(
            width: 1, writer: FrameWriter(descriptor: sink), registry: servingRegistry, runs: runs,
            reader: PipeReader(descriptor: -1, registry: servingRegistry, runs: continuation))
        let here = RunHereExecutor()
        Task(executorPreference: here) { _ = await rehearsal.runAll(serving) }
        here.runAll()
    }

    /// Threads in this process (1 until anything started one), from /proc/self/stat.
    private static func threadCount() -> Int {
        let fd = open("/proc/self/stat", O_RDONLY)
        guard fd >= 0 else { return 0 }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        guard count > 0 else { return 0 }
        let text = String(decoding: buffer[0..<count], as: UTF8.self)
        // "pid (comm) state ppid …": num_threads is the 18th field after the command.
        guard let close = text.lastIndex(of: ")") else { return 0 }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 17 ? Int(fields[17]) ?? 0 : 0
    }

    private func serveThenExit(concurrency: Int) -> Never {
        // The executor's pipe is read on this thread, which has nothing else to do, rather than
        // on one more (a forked worker pays for every thread it starts).
        let serving = beginServing(concurrency: concurrency, input: 3, output: 4)
        let worker = self
        Task.detached { exit(await worker.runAll(serving)) }
        serving.reader.readOnThisThread()
        while true { pause() }
    }

    private func fail(_ message: String) -> Never {
        var text = message + "\n"
        text.withUTF8 { _ = write(2, $0.baseAddress, $0.count) }
        exit(1)
    }
}

private final class ServeJob: @unchecked Sendable {
    let worker: Worker
    let concurrency: Int
    init(worker: Worker, concurrency: Int) {
        self.worker = worker
        self.concurrency = concurrency
    }
}

/// Runs the jobs given to it on the thread that calls ``runAll()`` (the fork server's rehearsal,
/// which must not start a thread).
private final class RunHereExecutor: TaskExecutor, @unchecked Sendable {
    private var jobs: [UnownedJob] = []

    func enqueue(_ job: consuming ExecutorJob) {
        jobs.append(UnownedJob(job))
    }

    /// Runs the jobs, and those they enqueue, until none is left.
    func runAll() {
        var next = 0
        while next < jobs.count {
            let job = jobs[next]
            next += 1
            job.runSynchronously(on: asUnownedTaskExecutor())
        }
        jobs = []
    }
}
