import CCgroup
public import ProcessSupervision
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// One cgroup this executor created (in every hierarchy it uses): for a task, a worker, or a pool
/// of workers. Processes join it before they run (``openJoinFiles()``) or are moved in by pid
/// (``attach(_:)``); it reports usage and OOM kills, kills everything inside, and is removed by
/// ``destroy()``.
public final class Cgroup: Sendable {
    /// The name under the executor's cgroup, e.g. `task-3-hello` or `pool/worker-1`.
    public let name: String
    public let limits: CgroupLimits
    /// Its directory in each v1 hierarchy used.
    let v1Directories: [(controllers: [String], directory: String)]
    /// Its directory in the v2 hierarchy, when one is used.
    let v2Directory: String?

    init(
        name: String, limits: CgroupLimits, v1Directories: [(controllers: [String], directory: String)],
        v2Directory: String?
    ) {
        self.name = name
        self.limits = limits
        self.v1Directories = v1Directories
        self.v2Directory = v2Directory
    }

    private func v1Directory(_ controller: String) -> String? {
        v1Directories.first { $0.controllers.contains(controller) }?.directory
    }

    /// Where membership is read and everything is killed: v2 (`cgroup.kill`), else the v1 freezer.
    private var containmentDirectory: String? {
        v2Directory ?? v1Directory("freezer") ?? v1Directories.first?.directory
    }

    /// Every `cgroup.procs` a process must be written to.
    private var procsFiles: [String] {
        v1Directories.map { $0.directory + "/cgroup.procs" } + (v2Directory.map { [$0 + "/cgroup.procs"] } ?? [])
    }

    /// Opens every `cgroup.procs` for a spawn that joins before it execs (see `SpawnRequest.joinCgroups`).
    /// Close the descriptors once the child is started.
    public func openJoinFiles() throws(IsolationError) -> [Int32] {
        var descriptors: [Int32] = []
        for file in procsFiles {
            let fd = open(file, O_WRONLY | O_CLOEXEC)
            guard fd >= 0 else {
                let code = errno
                for open in descriptors { close(open) }
                throw .systemCall("opening \(file)", errno: code)
            }
            descriptors.append(fd)
        }
        return descriptors
    }

    /// Moves a running process (all its threads) into this cgroup.
    public func attach(_ pid: Int32) throws(IsolationError) {
        for file in procsFiles {
            let rc = CgroupFiles.write(file, "\(pid)")
            guard rc == 0 else { throw .systemCall("moving pid \(pid) into \(file)", errno: rc) }
        }
    }

    /// The processes inside, nested cgroups included.
    public var processes: [Int32] {
        guard let directory = containmentDirectory else { return [] }
        return Self.processes(under: directory)
    }

    private static func processes(under directory: String) -> [Int32] {
        CgroupFiles.pids(directory + "/cgroup.procs")
            + CgroupFiles.subdirectories(directory).flatMap { processes(under: directory + "/" + $0) }
    }

    /// True when no process is left inside (nested cgroups included).
    public var isEmpty: Bool {
        if let v2Directory, let populated = CgroupFiles.keyed(v2Directory + "/cgroup.events", "populated") {
            return populated == 0
        }
        return processes.isEmpty
    }

    /// Sends `signal` to every process inside.
    public func signalAll(_ signal: Int32) {
        for pid in processes { _ = kill(pid, signal) }
    }

    /// SIGKILL for everything inside, without a race against forks: `cgroup.kill` on v2; on v1
    /// freeze, kill every process, thaw (the kill is delivered on thaw).
    public func killAll() {
        if let v2Directory, CgroupFiles.write(v2Directory + "/cgroup.kill", "1") == 0 { return }
        if let freezer = v1Directory("freezer") {
            if CgroupFiles.write(freezer + "/freezer.state", "FROZEN") == 0 {
                // Freezing completes asynchronously; killing a process that is still freezing is fine,
                // the point is that nothing inside can fork while we walk the list.
                for _ in 0..<100 {
                    if CgroupFiles.read(freezer + "/freezer.state")?.hasPrefix("FROZEN") == true { break }
                    usleep(1000)
                }
                signalAll(SIGKILL)
                CgroupFiles.write(freezer + "/freezer.state", "THAWED")
                return
            }
        }
        signalAll(SIGKILL)
    }

    /// Waits until nothing is left inside, checking every 10 ms, at most until `deadline`.
    /// Returns whether it is empty.
    public func waitUntilEmpty(deadline: ContinuousClock.Instant) async -> Bool {
        while !isEmpty {
            // The processes were killed: they become zombies of their parents (the executor is a
            // subreaper, so often ours) and leave the cgroup when reaped.
            ProcessReaper.shared.sweepOrphans()
            guard ContinuousClock.now < deadline else { return false }
            do { try await Task.sleep(for: .milliseconds(10)) } catch { return isEmpty }
        }
        return true
    }

    /// How many processes inside the kernel's OOM killer has killed (`oom_kill`).
    public var oomKills: Int64 {
        if let memory = v1Directory("memory") {
            return CgroupFiles.keyed(memory + "/memory.oom_control", "oom_kill") ?? 0
        }
        if let v2Directory { return CgroupFiles.keyed(v2Directory + "/memory.events", "oom_kill") ?? 0 }
        return 0
    }

    /// Periods in which the CFS quota throttled the cgroup (`nr_throttled`), when it is known.
    public var throttledPeriods: Int64? {
        if let cpu = v1Directory("cpu") { return CgroupFiles.keyed(cpu + "/cpu.stat", "nr_throttled") }
        if let v2Directory { return CgroupFiles.keyed(v2Directory + "/cpu.stat", "nr_throttled") }
        return nil
    }

    /// CPU time and peak memory of everything that ran inside; nil fields where the cgroup cannot
    /// tell (no memory controller, say).
    public func usage() -> CgroupUsage {
        var usage = CgroupUsage()
        if let cpuacct = v1Directory("cpuacct") {
            usage.userCPUMicroseconds = CgroupFiles.number(cpuacct + "/cpuacct.usage_user").map { $0 / 1000 }
            usage.systemCPUMicroseconds = CgroupFiles.number(cpuacct + "/cpuacct.usage_sys").map { $0 / 1000 }
        } else if let v2Directory {
            usage.userCPUMicroseconds = CgroupFiles.keyed(v2Directory + "/cpu.stat", "user_usec")
            usage.systemCPUMicroseconds = CgroupFiles.keyed(v2Directory + "/cpu.stat", "system_usec")
        }
        if let memory = v1Directory("memory") {
            usage.peakMemoryBytes = CgroupFiles.number(memory + "/memory.max_usage_in_bytes")
        } else if let v2Directory {
            usage.peakMemoryBytes = CgroupFiles.number(v2Directory + "/memory.peak")
        }
        return usage
    }

    /// Kills what is left, waits for it to be gone (up to `timeout`), and removes the cgroup from
    /// every hierarchy. Nested cgroups must be destroyed first.
    @discardableResult
    public func destroy(timeout: Duration = .seconds(10)) async -> Bool {
        killAll()
        let empty = await waitUntilEmpty(deadline: .now + timeout)
        // Empty, it goes with a plain rmdir (libcgroup's delete would first move its tasks to the
        // parent, reading files for nothing).
        var removed = true
        for (_, directory) in v1Directories {
            removed = Self.removeDirectory(directory) && removed
        }
        if let v2Directory { removed = Self.removeDirectory(v2Directory) && removed }
        return empty && removed
    }

    /// rmdir, retried while the kernel still reports the cgroup busy (its last processes leaving).
    static func removeDirectory(_ directory: String) -> Bool {
        for attempt in 0..<50 {
            if rmdir(directory) == 0 || errno == ENOENT { return true }
            guard errno == EBUSY else { return false }
            usleep(useconds_t(min(1000 << attempt, 100_000)))
        }
        return false
    }
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
