import CProcessSpawn
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reaps children through their pidfds on one dedicated thread (epoll), so that waiting costs
/// no thread per child and never steals the children of other code in the same process
/// (a `waitpid(-1)` reaper would). The same thread can wait for other descriptors
/// (``watch(_:onReadable:)``: the executor's termination signals).
///
/// Once ``adoptOrphans()`` made the process a child subreaper, descendants whose parents exit
/// are re-parented to us; the same thread then reaps those orphans (children it does not track)
/// whenever it wakes, at least once a second, and whenever ``sweepOrphans()`` or
/// ``reapExitedOrphans()`` asks, so no zombie is left behind.
public final class ProcessReaper: Sendable {
    /// The process-wide reaper. It owns one thread for the life of the process.
    public static let shared = ProcessReaper()

    private struct Registry {
        var waiters: [Int32: (pid: Int32, continuation: CheckedContinuation<(Termination, ProcessUsage), Never>)] = [:]
        /// Pids of the children we started or adopted and have not reaped yet.
        var tracked: Set<Int32> = []
        var sweeping = false
        /// Children being created and not yet tracked: no sweep meanwhile.
        var creations = 0
        /// Other descriptors the thread waits on (see ``watch(_:onReadable:)``).
        var watchers: [Int32: @Sendable () -> Void] = [:]
    }

    private let epoll: Int32
    private let registry = LockedValue(Registry())

    private init() {
        epoll = cps_epoll_create()
        precondition(epoll >= 0, "epoll_create1 failed: errno \(errno)")
        let started = DetachedThread.start(named: "reaper") { [self] in loop() }
        precondition(started, "cannot start the process reaper's thread")
    }

    /// Makes this process a child subreaper and starts reaping orphans. For the executor program
    /// only: in a process where other code starts children and waits for them itself, the sweep
    /// would take theirs.
    public func adoptOrphans() throws(ProcessError) {
        let rc = cps_become_subreaper()
        guard rc == 0 else { throw .systemCall("prctl(PR_SET_CHILD_SUBREAPER)", errno: rc) }
        registry.withLock { $0.sweeping = true }
    }

    /// Whether orphans are reaped here (``adoptOrphans()`` was called).
    public var isSubreaper: Bool { registry.withLock { $0.sweeping } }

    /// Runs `body`, which creates children and tracks them (``ChildProcess/spawn(_:reaper:)``,
    /// ``ChildProcess/adopt(pid:reaper:)``), with the orphan sweep held off, so that a new child
    /// that exits at once is never taken for an orphan before it is tracked.
    public func creatingChildren<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        registry.withLock { $0.creations += 1 }
        defer { registry.withLock { $0.creations -= 1 } }
        return try body()
    }

    func track(_ pid: Int32) { _ = registry.withLock { $0.tracked.insert(pid) } }

    /// Also waits, on the reaper's thread, for `fd` to become readable, and runs `onReadable` there
    /// each time it is (it must read what is ready and not block): the executor's termination
    /// signals arrive this way (a signalfd), so that watching them costs no thread of its own.
    /// It is watched for the life of the process: never close it. False when `fd` cannot be waited on.
    public func watch(_ fd: Int32, onReadable: @escaping @Sendable () -> Void) -> Bool {
        registry.withLock { $0.watchers[fd] = onReadable }
        guard cps_epoll_add_readable(epoll, fd) == 0 else {
            _ = registry.withLock { $0.watchers.removeValue(forKey: fd) }
            return false
        }
        return true
    }

    func wait(pidfd: Int32, pid: Int32) async -> (Termination, ProcessUsage) {
        await withCheckedContinuation { continuation in
            registry.withLock { $0.waiters[pidfd] = (pid, continuation) }
            if cps_epoll_add_readable(epoll, pidfd) != 0 {
                // Not pollable: fall back to a blocking wait on this thread.
                let waiter = registry.withLock { $0.waiters.removeValue(forKey: pidfd) }
                let result = Self.reap(pidfd, blocking: true) ?? (.exited(-1), ProcessUsage())
                registry.withLock { _ = $0.tracked.remove(pid) }
                waiter?.continuation.resume(returning: result)
            }
        } as (Termination, ProcessUsage)
    }

    /// Reaps every orphan that has exited (no-op unless ``adoptOrphans()`` was called), listing
    /// every child of ours (`/proc/self/task/*/children`) when the quick look of
    /// ``reapExitedOrphans()`` cannot see past a child we track.
    public func sweepOrphans() {
        registry.withLock { registry in
            if Self.reapShownOrphans(&registry) == .hiddenBehindTracked { Self.reapListedOrphans(&registry) }
        }
    }

    /// Reaps the orphans that have exited as far as the kernel shows them without listing every
    /// child: it shows one exited child at a time, the oldest, so an exited child we track (about
    /// to be reaped through its pidfd, after which the reaper's thread looks again) hides any
    /// orphan behind it. A few system calls where a listing takes dozens: what runs after every
    /// task; ``sweepOrphans()`` is the thorough one.
    public func reapExitedOrphans() {
        registry.withLock { registry in _ = Self.reapShownOrphans(&registry) }
    }

    private enum QuickLook { case noneLeft, hiddenBehindTracked, notSweeping }

    private static func reapShownOrphans(_ registry: inout Registry) -> QuickLook {
        guard registry.sweeping, registry.creations == 0 else { return .notSweeping }
        while true {
            let pid = cps_exited_child()
            guard pid > 0 else { return .noneLeft }
            if registry.tracked.contains(pid) { return .hiddenBehindTracked }
            // Not reaped (it cannot be, as it was just shown exited): stop rather than look again.
            guard cps_reap_if_exited(pid) == 1 else { return .noneLeft }
        }
    }

    private static func reapListedOrphans(_ registry: inout Registry) {
        var children = [pid_t](repeating: 0, count: 4096)
        let count = cps_list_children(&children, Int32(children.count))
        guard count > 0 else { return }
        for pid in children.prefix(Int(count)) where !registry.tracked.contains(pid) {
            _ = cps_reap_if_exited(pid)
        }
    }

    /// Kills the orphans (re-parented to us, see ``adoptOrphans()``) whose start-up environment holds
    /// `entry` (`NAME=value`), and what they leave behind in turn; returns how many were killed. This
    /// is how a task's escaped descendants are found where there are no cgroups. No-op unless
    /// ``adoptOrphans()`` was called. `lookAgain`: processes were just killed whose children may
    /// still be on their way to us, so an empty first look is not the end. Between looks it sleeps
    /// as a Swift task (5 ms each), giving its thread back.
    @discardableResult
    public func killOrphans(carrying entry: String, lookAgain: Bool) async -> Int {
        guard isSubreaper else { return 0 }
        let wanted = Array(entry.utf8)
        var killed = 0
        // A killed orphan's own children, and descendants of processes still exiting, come to us a
        // moment later: look a few times, and again while any were found.
        var quiet = 0
        for _ in 0..<50 {
            var untracked = 0
            let found: [Int32] = registry.withLock { registry in
                var children = [pid_t](repeating: 0, count: 4096)
                let count = cps_list_children(&children, Int32(children.count))
                guard count > 0 else { return [] }
                let candidates = children.prefix(Int(count)).filter { !registry.tracked.contains($0) }
                untracked = candidates.count
                return candidates.filter { Self.environment(of: $0).contains(wanted) }
            }
            for pid in found { kill(pid, SIGKILL) }
            killed += found.count
            sweepOrphans()
            quiet = found.isEmpty ? quiet + 1 : 0
            if untracked == 0 && !lookAgain { break }
            if quiet >= 3 { break }
            try? await Task.sleep(for: .milliseconds(5))
        }
        return killed
    }

    /// The NUL-separated entries of `/proc/<pid>/environ` (empty when unreadable).
    private static func environment(of pid: Int32) -> [[UInt8]] {
        let fd = open("/proc/\(pid)/environ", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return [] }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16384)
        while true {
            let count = read(fd, &chunk, chunk.count)
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { break }
            bytes += chunk[0..<count]
        }
        return bytes.split(separator: 0).map(Array.init)
    }

    private func loop() {
        var ready = [Int32](repeating: -1, count: 64)
        var lastListing = ContinuousClock.now
        while true {
            let count = cps_epoll_wait(epoll, &ready, Int32(ready.count), 1000)
            precondition(count >= 0, "epoll_wait failed: errno \(-count)")
            for index in 0..<Int(count) {
                let fd = ready[index]
                if let watcher = registry.withLock({ $0.watchers[fd] }) {
                    watcher()
                    continue
                }
                guard let result = Self.reap(fd, blocking: false) else { continue }
                _ = cps_epoll_remove(epoll, fd)
                let waiter = registry.withLock { registry in
                    let waiter = registry.waiters.removeValue(forKey: fd)
                    if let waiter { registry.tracked.remove(waiter.pid) }
                    return waiter
                }
                waiter?.continuation.resume(returning: result)
            }
            // Orphans do not wake this thread (they have no pidfd here): every wake looks for them
            // quickly, and once a second thoroughly (every child is listed when a tracked one hides
            // the rest), so that none stays a zombie behind a child nobody waits for.
            if ContinuousClock.now - lastListing >= .seconds(1) {
                lastListing = .now
                sweepOrphans()
            } else {
                reapExitedOrphans()
            }
        }
    }

    private static func reap(_ pidfd: Int32, blocking: Bool) -> (Termination, ProcessUsage)? {
        var exited: Int32 = 0
        var status: Int32 = 0
        var usage = cps_usage()
        let rc = cps_pidfd_wait(pidfd, &exited, &status, blocking ? 0 : 1, &usage)
        if rc == EAGAIN { return nil }
        guard rc == 0 else { return (.exited(-1), ProcessUsage()) }
        let accounted = ProcessUsage(
            userCPUMicroseconds: usage.user_microseconds, systemCPUMicroseconds: usage.system_microseconds,
            peakMemoryBytes: usage.max_rss_kilobytes * 1024)
        return (exited == 1 ? .exited(status) : .signaled(status), accounted)
    }
}
