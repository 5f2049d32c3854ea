#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One long-lived thread that runs blocking jobs one after another, in the order they were given,
/// so that a blocking exchange repeated for every task (a request to the worker fork server, say)
/// never holds a thread of Swift's cooperative pool (two of them on a 2-core agent) and does not pay
/// a thread's creation each time as ``BlockingThread`` does. The thread starts with the first job
/// and ends after ``stop()`` once the jobs given before it are done.
public final class SerialThread: Sendable {
    private struct State {
        var jobs = FIFOQueue<Job>()
        var started = false
        var stopped = false
    }

    private let state = LockedValue(State())
    private let wakeups = Semaphore()

    /// What its thread goes by (`ps -L`, `top -H`; 15 bytes are kept).
    private let name: String

    public init(named name: String) {
        self.name = name
    }

    /// Runs `body` on the thread after the jobs before it; inline when no thread can be had, or
    /// after ``stop()``.
    public func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let job = Job { continuation.resume(returning: body()) }
            let (queued, start) = state.withLock { state -> (Bool, Bool) in
                guard !state.stopped else { return (false, false) }
                state.jobs.append(job)
                defer { state.started = true }
                return (true, !state.started)
            }
            guard queued else { return job.body() }
            if start && !startThread() {
                // No thread to be had: this job and any queued with it run inline, now, and later
                // ones inline too.
                state.withLock { $0.stopped = true }
                while let waiting = take() { waiting.body() }
                return
            }
            wakeups.post()
        }
    }

    /// Lets the thread end once the jobs already given are done; later jobs run inline.
    public func stop() {
        state.withLock { $0.stopped = true }
        wakeups.post()
    }

    private func take() -> Job? {
        state.withLock { $0.jobs.popFirst() }
    }

    private func serve() {
        while true {
            wakeups.wait()
            while let job = take() { job.body() }
            if state.withLock({ $0.stopped && $0.jobs.isEmpty }) { return }
        }
    }

    private func startThread() -> Bool {
        DetachedThread.start(named: name) { [self] in serve() }
    }

    private final class Job: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }

    /// A counting semaphore (POSIX `sem_t`, which must not move in memory).
    private final class Semaphore: @unchecked Sendable {
        private let semaphore = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)

        init() { sem_init(semaphore, 0, 0) }

        deinit {
            sem_destroy(semaphore)
            semaphore.deallocate()
        }

        func post() { sem_post(semaphore) }

        func wait() {
            while sem_wait(semaphore) != 0 && errno == EINTR {}
        }
    }
}
