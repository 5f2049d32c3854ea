import Testing

@testable import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The pool that the executor and forked Swift workers run their tasks on instead of libdispatch's
/// (see `TaskThreads.installPool`). Here it runs tasks through a task-executor preference, so that the
/// test process keeps its own default executor.
@Suite struct TaskThreadPoolTests {
    /// Many tasks at once all run, each once, on no more threads than the pool's width.
    @Test func runsEveryTaskOnAtMostItsWidthOfThreads() async {
        let pool = TaskThreadPool(width: 2)
        let threads = Threads()
        let results = await withTaskExecutorPreference(pool) {
            await withTaskGroup(of: Int.self) { group in
                for n in 0..<500 {
                    group.addTask {
                        threads.note()
                        await Task.yield()
                        threads.note()
                        return n * 3
                    }
                }
                var all: [Int] = []
                for await value in group { all.append(value) }
                return all
            }
        }
        #expect(results.sorted() == (0..<500).map { $0 * 3 })
        #expect((1...2).contains(threads.seen.withLock { $0.count }))
        #expect(threads.names.withLock { $0 } == [TaskThreadPool.threadName])
    }

    /// A job that blocks its thread until another job has run (a semaphore a task signals, the
    /// way synchronous code waits for async work) is not left waiting: while one thread is busy a
    /// second one takes the other job, as libdispatch's pool would.
    @Test func aJobBlockedOnAnotherIsServedByASecondThread() async {
        let pool = TaskThreadPool(width: 2)
        let signalled = UnsafeMutablePointer<sem_t>.allocate(capacity: 1)
        sem_init(signalled, 0, 0)
        defer {
            sem_destroy(signalled)
            signalled.deallocate()
        }
        let semaphore = SendablePointer(signalled)
        let waited = await withTaskExecutorPreference(pool) {
            await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    while sem_wait(semaphore.pointer) != 0 && errno == EINTR {}
                    return true
                }
                group.addTask {
                    sem_post(semaphore.pointer)
                    return false
                }
                var blockedOneReturned = false
                for await value in group where value { blockedOneReturned = true }
                return blockedOneReturned
            }
        }
        #expect(waited)
    }

    /// Not waking for its own jobs (the executor's pool), a task that hops from job to job — each
    /// `yield` enqueues its next job from the pool's thread while nothing else waits — stays on
    /// the thread that runs it: the second thread is never started.
    @Test func aChainOfItsOwnJobsStaysOnTheThreadThatRunsIt() async {
        let pool = TaskThreadPool(width: 2, wakesForItsOwnJobs: false)
        let threads = Threads()
        await withTaskExecutorPreference(pool) {
            for _ in 0..<200 {
                threads.note()
                await Task.yield()
            }
        }
        #expect(threads.seen.withLock { $0.count } == 1)
    }

    /// Not waking for its own jobs, the pool still runs work for two on two threads: jobs that
    /// wait behind one another wake the second thread, so two tasks that each need the other to
    /// have started (each blocks until both have begun) both finish.
    @Test func jobsThatWaitBehindAnotherWakeTheSecondThread() async {
        let pool = TaskThreadPool(width: 2, wakesForItsOwnJobs: false)
        let begun = Tally()
        let finished = await withTaskExecutorPreference(pool) {
            await withTaskGroup(of: Int.self) { group in
                for _ in 0..<2 {
                    group.addTask {
                        // Tell the other one this one has begun, then wait until it has too (a
                        // pool that left the other waiting behind this one would fail the test
                        // after a minute rather than hang it).
                        begun.count.withLock { $0 += 1 }
                        let clock = ContinuousClock()
                        let giveUp = clock.now + .seconds(60)
                        while clock.now < giveUp {
                            if begun.count.withLock({ $0 }) >= 2 { return 1 }
                            sched_yield()
                        }
                        return 0
                    }
                }
                return await group.reduce(0, +)
            }
        }
        #expect(finished == 2)
    }

    /// Its threads run at the nice value it was given (a higher one: lowering it takes privilege).
    @Test func itsThreadsRunAtTheNiceValueItWasGiven() async {
        let pool = TaskThreadPool(width: 1, nice: 7)
        let nice = await withTaskExecutorPreference(pool) { niceOfThisThread() }
        #expect(nice == 7)
    }

    /// A thread of ours started from a thread at another nice value (a task thread's, say) runs at
    /// the process's value and goes by its own name, not by its starter's.
    @Test func aDetachedThreadGoesByItsNameAtTheProcesssNiceValue() async {
        let pool = TaskThreadPool(width: 1, nice: 7)
        let seen = LockedValue<(name: String?, nice: Int?)?>(nil)
        let done = await withTaskExecutorPreference(pool) {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let started = DetachedThread.start(named: "detached-test") {
                    let name = thisThreadsFile("comm")
                    seen.withLock { $0 = (name, niceOfThisThread()) }
                    continuation.resume(returning: true)
                }
                if !started { continuation.resume(returning: false) }
            }
        }
        #expect(done)
        errno = 0
        let processNice = Int(getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid())))
        let found = seen.withLock { $0 }
        #expect(found?.name == "detached-test\n")
        #expect(found?.nice == processNice)
    }

    /// A job enqueued for later runs once its delay has passed, and not before.
    @Test func aDelayedJobRunsAfterItsDelay() async {
        let pool = TaskThreadPool(width: 1)
        let clock = ContinuousClock()
        let start = clock.now
        let ranAfter: Duration = await withCheckedContinuation { continuation in
            let job = _swift_createJobForTestingOnly {
                continuation.resume(returning: start.duration(to: clock.now))
            }
            pool.enqueue(job, after: .milliseconds(50), clock: clock)
        }
        #expect(ranAfter >= .milliseconds(50))
    }

    /// Timers come out earliest deadline first, equal deadlines in the order they came, and only
    /// once due.
    @Test func timersComeOutByDeadlineThenArrival() {
        var timers = TimerQueue<String>()
        let earliest = [("c", 30), ("a", 10), ("b", 20), ("a2", 10), ("d", 40)].map { job, deadline in
            timers.add(job, deadline: UInt64(deadline))
        }
        #expect(earliest == [true, true, false, false, false])
        #expect(timers.earliestDeadline == 10)
        let early = timers.takeDue(now: 5)
        #expect(early == nil)
        var out: [String] = []
        while let job = timers.takeDue(now: 30) { out.append(job) }
        #expect(out == ["a", "a2", "b", "c"])
        #expect(timers.earliestDeadline == 40)
        let last = timers.takeDue(now: 40)
        #expect(last == "d")
        #expect(timers.isEmpty)
    }
}

/// The threads tasks ran on.
private final class Threads: Sendable {
    let seen = LockedValue(Set<UInt>())
    let names = LockedValue(Set<String>())

    func note() {
        seen.withLock { _ = $0.insert(UInt(pthread_self())) }
        let text = thisThreadsFile("comm") ?? ""
        names.withLock { _ = $0.insert(text.hasSuffix("\n") ? String(text.dropLast()) : text) }
    }
}

/// The calling thread's nice value: field 19 of `/proc/thread-self/stat` (the 17th after the
/// command name's closing parenthesis); nil when unreadable.
private func niceOfThisThread() -> Int? {
    guard let text = thisThreadsFile("stat"), let end = text.lastIndex(of: ")") else { return nil }
    let fields = text[text.index(after: end)...].split(separator: " ")
    return fields.count > 16 ? Int(fields[16]) : nil
}

/// What `/proc/thread-self/<name>` holds for the calling thread (its first KiB); nil when unreadable.
private func thisThreadsFile(_ name: String) -> String? {
    var bytes = [UInt8](repeating: 0, count: 1024)
    let fd = open("/proc/thread-self/" + name, O_RDONLY)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    let count = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
    return count > 0 ? String(decoding: bytes.prefix(count), as: UTF8.self) : nil
}

/// A count shared by tasks.
private final class Tally: Sendable {
    let count = LockedValue(0)
}

/// A pointer handed to tasks that only pass it to C calls made for that purpose.
private struct SendablePointer: @unchecked Sendable {
    let pointer: UnsafeMutablePointer<sem_t>
    init(_ pointer: UnsafeMutablePointer<sem_t>) { self.pointer = pointer }
}
