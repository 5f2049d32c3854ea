import CCgroup
public import ProcessSupervision
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One cgroup this executor created (in every hierarchy it uses), for one task, worker or pool of
/// workers. Processes join it before they run (``openJoinFiles()``) or are moved in by pid
/// (``attach(_:)``); it reports usage and OOM kills, kills everything inside, and is given back
/// with ``CgroupIsolation/destroy(_:)``. Once given back it is inert: it lists no process, its
/// kills reach nothing and it cannot be joined, because a task cgroup's directories may already
/// serve the next task (see ``CgroupIsolation/makeTaskCgroup(limits:)``).
public final class Cgroup: Sendable {
    /// The name under the executor's cgroup, e.g. `task-3` or `pool-1-workers/worker-2-1`.
    public let name: String
    public let limits: CgroupLimits
    let directory: CgroupDirectory
    /// A task cgroup, whose directories may serve another task once given back.
    let recyclable: Bool
    private let released = Atomic<Bool>(false)

    init(directory: CgroupDirectory, limits: CgroupLimits, recyclable: Bool = false) {
        self.name = directory.name
        self.limits = limits
        self.directory = directory
        self.recyclable = recyclable
    }

    /// Whether it was given back.
    public var isReleased: Bool { released.load(ordering: .acquiring) }

    /// Marks it given back; false if it already was.
    func release() -> Bool { !released.exchange(true, ordering: .acquiringAndReleasing) }

    /// Opens what a spawn joins it with before it execs (see `SpawnRequest.joinCgroups`). Close
    /// it once the child is started.
    public func openSpawnJoin() throws(IsolationError) -> CgroupJoin {
        guard !isReleased else { throw .unavailable("cgroup \(name) was given back") }
        return try directory.openSpawnJoin()
    }

    /// Opens the files a process that joins it itself (a forked worker, first thing) writes "0"
    /// to. Close the descriptors once the process is started.
    public func openJoinFiles() throws(IsolationError) -> [Int32] {
        guard !isReleased else { throw .unavailable("cgroup \(name) was given back") }
        return try directory.openJoinFiles()
    }

    /// Moves a running process (all its threads) into this cgroup.
    public func attach(_ pid: Int32) throws(IsolationError) {
        guard !isReleased else { throw .unavailable("cgroup \(name) was given back") }
        try directory.attach(pid)
    }

    /// The processes inside, nested cgroups included.
    public var processes: [Int32] { isReleased ? [] : directory.processes }

    /// True when no process is left inside (nested cgroups included).
    public var isEmpty: Bool { isReleased || directory.isEmpty }

    /// Sends `signal` to every process inside.
    public func signalAll(_ signal: Int32) {
        for pid in processes { _ = kill(pid, signal) }
    }

    /// SIGKILL for everything inside, without a race against forks: `cgroup.kill` on v2; on v1
    /// freeze, kill every process, thaw (the kill is delivered on thaw).
    public func killAll() async {
        if !isReleased { await directory.killAll() }
    }

    /// Waits until nothing is left inside, checking every 10 ms, at most until `deadline`.
    /// Returns whether it is empty.
    public func waitUntilEmpty(deadline: ContinuousClock.Instant) async -> Bool {
        isReleased ? true : await directory.waitUntilEmpty(deadline: deadline)
    }

    /// How many processes inside the kernel's OOM killer has killed (`oom_kill`).
    public var oomKills: Int64 { isReleased ? 0 : directory.oomKills }

    /// Periods in which the CFS quota throttled the cgroup (`nr_throttled`), when it is known.
    public var throttledPeriods: Int64? { isReleased ? nil : directory.throttledPeriods }

    /// CPU time and peak memory of everything that ran inside; nil fields where the cgroup cannot
    /// tell (no memory controller, say).
    public func usage() -> CgroupUsage { isReleased ? CgroupUsage() : directory.usage() }
}

/// What a cgroup accounted to everything that ran in it.
public struct CgroupUsage: Sendable, Equatable {
    public var userCPUMicroseconds: Int64?
    public var systemCPUMicroseconds: Int64?
    public var peakMemoryBytes: Int64?

    public init(userCPUMicroseconds: Int64? = nil, systemCPUMicroseconds: Int64? = nil, peakMemoryBytes: Int64? = nil) {
        self.userCPUMicroseconds = userCPUMicroseconds
        self.systemCPUMicroseconds = systemCPUMicroseconds
        self.peakMemoryBytes = peakMemoryBytes
    }

    /// CPU used since `before` (nil: since the start); the peak stays the peak so far.
    public func since(_ before: CgroupUsage?) -> CgroupUsage {
        guard let before else { return self }
        func delta(_ now: Int64?, _ then: Int64?) -> Int64? { now.map { $0 - (then ?? 0) } }
        return CgroupUsage(
            userCPUMicroseconds: delta(userCPUMicroseconds, before.userCPUMicroseconds),
            systemCPUMicroseconds: delta(systemCPUMicroseconds, before.systemCPUMicroseconds),
            peakMemoryBytes: peakMemoryBytes)
    }

    /// This usage where the cgroup knows it, `fallback` (a wait4 accounting) where it does not.
    public func filled(from fallback: ProcessUsage) -> ProcessUsage {
        ProcessUsage(
            userCPUMicroseconds: userCPUMicroseconds ?? fallback.userCPUMicroseconds,
            systemCPUMicroseconds: systemCPUMicroseconds ?? fallback.systemCPUMicroseconds,
            peakMemoryBytes: peakMemoryBytes ?? fallback.peakMemoryBytes)
    }
}

/// libcgroup's `struct cgroup` while one of our cgroups is being created.
final class LibcgroupGroup {
    private var group: OpaquePointer?

    init(group: OpaquePointer) { self.group = group }

    deinit {
        if group != nil { cgroup_free(&group) }
    }
}
