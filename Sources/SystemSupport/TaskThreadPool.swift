@_spi(ExperimentalCustomExecutors) @_spi(ExperimentalScheduling) import _Concurrency
import CProcessSpawn

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Swift's default executor replaced by a ``TaskThreadPool``.
public enum TaskThreads {
    /// Makes a new ``TaskThreadPool`` Swift's default executor: one thread per online core at
    /// most, each started when first needed. Call it before any task exists.
    ///
    /// - Parameter wakesForItsOwnJobs: whether a job that one of the pool's threads enqueues
    ///   while no other job waits wakes an idle thread for it. Yes (libdispatch's way) where a
    ///   job may block its thread until another job has run: a closure waiting on a semaphore
    ///   that a task signals. No where jobs never wait for each other (the executor): the thread
    ///   takes that job itself once the one it runs returns, instead of waking the other core for
    ///   it and going to sleep, so a hop between actors or a resumed continuation costs no
    ///   wake-up. Jobs enqueued from outside the pool (an event loop, a blocking thread) and a
    ///   job enqueued while another waits still wake an idle thread: work for two runs on two.
    /// - Parameter nice: the nice value of the pool's threads, when it may be set (lowering it
    ///   takes CAP_SYS_NICE); nil leaves the one they inherit.
    public static func installPool(wakesForItsOwnJobs: Bool = true, nice: Int32? = nil) {
        installed.withLock { installed in
            guard !installed else { return }
            installed = true
            TaskThreadPool.Factory.installed = TaskThreadPool(
                width: sysconf(Int32(_SC_NPROCESSORS_ONLN)), wakesForItsOwnJobs: wakesForItsOwnJobs, nice: nice)
            _createExecutors(factory: TaskThreadPool.Factory.self)
        }
    }

    private static let installed = LockedValue(false)
}

/// A pool of threads that runs Swift's jobs: a replacement for the default executor
/// (libdispatch's cooperative pool) in a process that should start as few threads as it can.
///
/// libdispatch starts, besides its cooperative threads (one per core at most), a manager thread
/// for its timers and its watch over blocked threads, and often more cooperative threads than
/// there are jobs, woken for work another thread was about to take. A forked worker runs one
/// closure and exits: each thread it starts costs it a clone, a stack mapped and faulted in, and
/// its exit (Tests/Benchmarks/HISTORY.md: fine mode). This pool starts a thread only when a job
/// waits and no thread of the pool is idle, up to one per core, and keeps none for itself: timers
/// (`Task.sleep`) are waited for by an idle thread of the pool.
///
/// Like libdispatch's cooperative pool, it wakes or starts a thread for every job enqueued while
/// all are busy and one more may start: a job that blocks its thread waiting for another job (a
/// semaphore that a task signals) is served as it would be there. Unless told not to wake for its
/// own jobs (``TaskThreads/installPool(wakesForItsOwnJobs:nice:)``): then a job one of its threads
/// enqueues while no other job waits is left to that thread.
final class TaskThreadPool: TaskExecutor, SchedulingExecutor, @unchecked Sendable {
    private let width: Int
    private let wakesForItsOwnJobs: Bool
    private let nice: Int32?

    // Guarded by `mutex`.
    /// Allocated with the pool: a fork server makes its pool before it forks, so the array's type
    /// metadata is instantiated there, once, rather than by every forked worker's first job
    /// (demangling its type name was about a fifteenth of a forked worker's CPU;
    /// Tests/Benchmarks/HISTORY.md).
    private var queue = FIFOQueue<UnownedJob>(reservingCapacity: 64)
    private var timers = TimerQueue<UnownedJob>()
    /// A thread waits for the earliest timer (the others wait without a deadline).
    private var timerKeeper = false
    private var threads = 0
    private var idle = 0
    private var wakesOnTheWay = 0
    /// The pool's threads, as `pthread_self()` gives them (at most `width`).
    private var members: [pthread_t] = []

    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let wakeup: UnsafeMutablePointer<pthread_cond_t>

    init(width: Int, wakesForItsOwnJobs: Bool = true, nice: Int32? = nil) {
        self.width = max(1, width)
        self.wakesForItsOwnJobs = wakesForItsOwnJobs
        self.nice = nice
        members.reserveCapacity(self.width)
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
        wakeup = .allocate(capacity: 1)
        wakeup.initialize(to: pthread_cond_t())
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(wakeup, &attributes)
        pthread_condattr_destroy(&attributes)
    }

    deinit {
        pthread_cond_destroy(wakeup)
        wakeup.deallocate()
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    /// What makes the installed pool Swift's default executor (see ``TaskThreads/installPool()``).
    fileprivate enum Factory: ExecutorFactory {
        nonisolated(unsafe) static var installed: TaskThreadPool?
        static var mainExecutor: any MainExecutor { PlatformExecutorFactory.mainExecutor }
        static var defaultExecutor: any TaskExecutor { installed! }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let caller = pthread_self()
        pthread_mutex_lock(mutex)
        queue.append(job)
        // Not waking for its own jobs, a thread of the pool takes a job it enqueued once the one it
        // runs returns, unless another job waits already: then there is work for two.
        let leftToCaller =
            !wakesForItsOwnJobs && queue.count == 1 && members.contains { pthread_equal($0, caller) != 0 }
        let wake = leftToCaller ? Wake.none : wakeOne()
        pthread_mutex_unlock(mutex)
        perform(wake)
    }

    func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, after delay: C.Duration, tolerance: C.Duration? = nil, clock: C
    ) {
        // Swift's clocks (continuous and suspending) count in `Duration`; a clock that does not
        // cannot be converted, and its job runs at once rather than never.
        let nanoseconds = (delay as? Duration).map(Self.nanoseconds) ?? 0
        let job = UnownedJob(job)
        pthread_mutex_lock(mutex)
        let earliest = timers.add(job, deadline: Self.now() &+ nanoseconds)
        // A new earliest deadline: the thread that waits for the timers must wait less, and with
        // none waiting for them, an idle thread must take them up.
        let wake = earliest ? (timerKeeper ? Wake.all : wakeOne()) : Wake.none
        pthread_mutex_unlock(mutex)
        perform(wake)
    }

    func enqueue<C: Clock>(
        _ job: consuming ExecutorJob, at instant: C.Instant, tolerance: C.Duration? = nil, clock: C
    ) {
        enqueue(job, after: clock.now.duration(to: instant), tolerance: tolerance, clock: clock)
    }

    /// The name the pool's threads go by (`ps -L`, `top -H`).
    static let threadName = "swift-tasks"

    /// Runs jobs on the calling thread, for ever.
    private func serve() {
        // Not allowed (no CAP_SYS_NICE), the thread keeps the process's nice value.
        if let nice { _ = cps_set_this_thread_nice(nice) }
        pthread_mutex_lock(mutex)
        members.append(pthread_self())
        while true {
            while let job = timers.takeDue(now: Self.now()) { queue.append(job) }
            if let job = queue.popFirst() {
                let wake = queue.isEmpty ? Wake.none : wakeOne()
                pthread_mutex_unlock(mutex)
                perform(wake)
                job.runSynchronously(on: asUnownedTaskExecutor())
                pthread_mutex_lock(mutex)
                continue
            }
            idle += 1
            if let earliest = timers.earliestDeadline, !timerKeeper {
                timerKeeper = true
                var deadline = timespec(
                    tv_sec: Int(earliest / 1_000_000_000), tv_nsec: Int(earliest % 1_000_000_000))
                pthread_cond_timedwait(wakeup, mutex, &deadline)
                timerKeeper = false
            } else {
                pthread_cond_wait(wakeup, mutex)
            }
            idle -= 1
            // Whatever woke it (a signal, the deadline, a spurious wake-up), one wake fewer is on
            // its way; at worst a later job wakes a thread that finds nothing.
            wakesOnTheWay = max(0, wakesOnTheWay - 1)
        }
    }

    // MARK: under `mutex`

    private enum Wake {
        case none, one, all, newThread
    }

    /// Wakes an idle thread that no wake is on the way to, or starts one more.
    private func wakeOne() -> Wake {
        if idle > wakesOnTheWay {
            wakesOnTheWay += 1
            return .one
        }
        guard threads < width, idle == 0 else { return .none }
        threads += 1
        return .newThread
    }

    private func perform(_ wake: Wake) {
        switch wake {
        case .none: break
        case .one: pthread_cond_signal(wakeup)
        case .all: pthread_cond_broadcast(wakeup)
        case .newThread:
            if !DetachedThread.start(named: Self.threadName, { [self] in serve() }) {
                // None to be had now: the next job enqueued tries again; the threads running
                // meanwhile take this one.
                pthread_mutex_lock(mutex)
                threads -= 1
                pthread_mutex_unlock(mutex)
            }
        }
    }

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    private static func nanoseconds(_ duration: Duration) -> UInt64 {
        let (seconds, attoseconds) = duration.components
        guard seconds >= 0 else { return 0 }
        let (total, overflow) = UInt64(seconds).multipliedReportingOverflow(by: 1_000_000_000)
        return overflow ? UInt64.max / 2 : total &+ UInt64(max(0, attoseconds) / 1_000_000_000)
    }
}

/// Jobs that wait for their time, earliest deadline first and, at equal deadlines, in the order
/// they came.
struct TimerQueue<Job> {
    private struct Entry: Comparable {
        let deadline: UInt64
        let sequence: UInt64
        let job: Job

        static func < (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.deadline, lhs.sequence) < (rhs.deadline, rhs.sequence)
        }

        static func == (lhs: Entry, rhs: Entry) -> Bool {
            (lhs.deadline, lhs.sequence) == (rhs.deadline, rhs.sequence)
        }
    }

    private var heap = MinimumHeap<Entry>()
    private var sequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var earliestDeadline: UInt64? { heap.minimum?.deadline }

    /// Adds `job` to run at `deadline`; true when it is now the earliest.
    mutating func add(_ job: Job, deadline: UInt64) -> Bool {
        sequence &+= 1
        let entry = Entry(deadline: deadline, sequence: sequence, job: job)
        heap.insert(entry)
        return heap.minimum == entry
    }

    /// Removes and returns the earliest job whose deadline is `now` or earlier.
    mutating func takeDue(now: UInt64) -> Job? {
        guard let first = heap.minimum, first.deadline <= now else { return nil }
        return heap.popMinimum()?.job
    }
}
