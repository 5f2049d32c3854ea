import ProcessSupervision
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A cgroup's directory in every hierarchy used, with its control files kept open. It outlives
/// the ``Cgroup`` of one task when given back empty and clean: then it serves the next task.
final class CgroupDirectory: Sendable {
    /// The name under the executor's cgroup.
    let name: String
    /// Its directory in each v1 hierarchy used.
    let v1Directories: [(controllers: [String], directory: String)]
    /// Its directory in the v2 hierarchy, when one is used.
    let v2Directory: String?
    let files = CgroupControlFiles()

    init(name: String, v1Directories: [(controllers: [String], directory: String)], v2Directory: String?) {
        self.name = name
        self.v1Directories = v1Directories
        self.v2Directory = v2Directory
    }

    /// Whether a soft memory limit was written here: the next task's must be written too (none: -1).
    private let softLimited = Atomic<Bool>(false)

    /// Notes the limits a cgroup was made with (a soft memory limit to undo when reused).
    func madeWith(_ limits: CgroupLimits) {
        if limits.memorySoftBytes != nil { softLimited.store(true, ordering: .releasing) }
    }

    /// Whether a `cgroup.kill` was written here: such a cgroup is not kept as a spare.
    private let killedOnce = Atomic<Bool>(false)
    var wasKilled: Bool { killedOnce.load(ordering: .acquiring) }

    func v1Directory(_ controller: String) -> String? {
        v1Directories.first { $0.controllers.contains(controller) }?.directory
    }

    /// Where membership is read and everything is killed: v2 (`cgroup.kill`), else the v1 freezer.
    private var containmentDirectory: String? {
        v2Directory ?? v1Directory("freezer") ?? v1Directories.first?.directory
    }

    /// Every `cgroup.procs` a process must be written to, to move it in by pid.
    private var procsFiles: [String] {
        v1Directories.map { $0.directory + "/cgroup.procs" } + (v2Directory.map { [$0 + "/cgroup.procs"] } ?? [])
    }

    /// The v1 `tasks` files a new process writes "0" to: it moves its one thread, which takes no
    /// machine-wide lock (a `cgroup.procs` write takes one, and its first taker after a quiet spell
    /// waits for an RCU grace period, README: Isolation).
    private var v1JoinFiles: [String] { v1Directories.map { $0.directory + "/tasks" } }

    /// Every directory, v1 first.
    var allDirectories: [String] { v1Directories.map(\.directory) + (v2Directory.map { [$0] } ?? []) }

    /// For a process that joins itself (a forked worker): the v1 `tasks` files and v2's
    /// `cgroup.procs` (v2 moves only whole processes between cgroups of its kind).
    func openJoinFiles() throws(IsolationError) -> [Int32] {
        try open(v1JoinFiles + (v2Directory.map { [$0 + "/cgroup.procs"] } ?? []))
    }

    /// For a spawn: the v1 `tasks` files, and v2's directory to create the child in (or, where
    /// that cannot be, its `cgroup.procs`). Not the directory of a cgroup that had a `cgroup.kill`:
    /// this kernel kills every child created in it at birth, and the spawn that finds a child so
    /// killed turns creating in cgroups off for the executor's lifetime
    /// (``ChildProcess/createsChildrenInCgroups``).
    func openSpawnJoin() throws(IsolationError) -> CgroupJoin {
        guard ChildProcess.createsChildrenInCgroups, !wasKilled else { return CgroupJoin(files: try openJoinFiles()) }
        let joinFiles = try open(v1JoinFiles)
        guard let v2Directory else { return CgroupJoin(files: joinFiles) }
        let directory = files.duplicate(v2Directory, directory: true)
        guard directory >= 0 else {
            let code = errno
            for fd in joinFiles { close(fd) }
            throw .systemCall("opening \(v2Directory)", errno: code)
        }
        return CgroupJoin(files: joinFiles, directory: directory)
    }

    private func open(_ paths: [String]) throws(IsolationError) -> [Int32] {
        var descriptors: [Int32] = []
        for file in paths {
            let fd = files.duplicate(file)
            guard fd >= 0 else {
                let code = errno
                for open in descriptors { close(open) }
                throw .systemCall("opening \(file)", errno: code)
            }
            descriptors.append(fd)
        }
        return descriptors
    }

    func attach(_ pid: Int32) throws(IsolationError) {
        for file in procsFiles {
            let rc = files.write(file, "\(pid)")
            guard rc == 0 else { throw .systemCall("moving pid \(pid) into \(file)", errno: rc) }
        }
    }

    var processes: [Int32] {
        guard let directory = containmentDirectory else { return [] }
        return CgroupFiles.pids(in: files.read(directory + "/cgroup.procs")) + Self.nestedProcesses(in: directory)
    }

    /// The processes in every cgroup nested below `directory` (a task running as root can make
    /// them), read afresh rather than through the kept-open control files.
    private static func nestedProcesses(in directory: String) -> [Int32] {
        CgroupFiles.subdirectories(directory).flatMap { name in
            let nested = directory + "/" + name
            return CgroupFiles.pids(in: CgroupFiles.read(nested + "/cgroup.procs")) + nestedProcesses(in: nested)
        }
    }

    /// True when no process is left inside (nested cgroups included).
    var isEmpty: Bool {
        if let v2Directory,
            let populated = CgroupFiles.keyed("populated", in: files.read(v2Directory + "/cgroup.events"))
        {
            return populated == 0
        }
        return processes.isEmpty
    }

    /// Whether it has cgroups nested in it (a task as root may make its own).
    var hasChildren: Bool {
        if let v2Directory,
            let descendants = CgroupFiles.keyed("nr_descendants", in: files.read(v2Directory + "/cgroup.stat"))
        {
            return descendants > 0
        }
        return allDirectories.contains { !CgroupFiles.subdirectories($0).isEmpty }
    }

    func killAll() async {
        if let v2Directory {
            killedOnce.store(true, ordering: .releasing)
            if files.write(v2Directory + "/cgroup.kill", "1") == 0 { return }
        }
        if let freezer = v1Directory("freezer") {
            if files.write(freezer + "/freezer.state", "FROZEN") == 0 {
                // Freezing completes asynchronously; killing a process that is still freezing is fine,
                // the point is that nothing inside can fork while we walk the list. Waited for by a
                // sleep that gives the thread back (up to 100 ms): a task thread blocked meanwhile
                // held up every other task's updates (the executor has one per core).
                for _ in 0..<100 {
                    if files.read(freezer + "/freezer.state")?.hasPrefix("FROZEN") == true { break }
                    try? await Task.sleep(for: .milliseconds(1))
                }
                for pid in processes { _ = kill(pid, SIGKILL) }
                files.write(freezer + "/freezer.state", "THAWED")
                return
            }
        }
        for pid in processes { _ = kill(pid, SIGKILL) }
    }

    /// Waits until nothing is left inside, checking every 10 ms, at most until `deadline`.
    func waitUntilEmpty(deadline: ContinuousClock.Instant) async -> Bool {
        while !isEmpty {
            // The processes were killed: they become zombies of their parents (the executor is a
            // subreaper, so often ours) and leave the cgroup when reaped.
            ProcessReaper.shared.sweepOrphans()
            guard ContinuousClock.now < deadline else { return false }
            do { try await Task.sleep(for: .milliseconds(10)) } catch { return isEmpty }
        }
        return true
    }

    var oomKills: Int64 {
        if let memory = v1Directory("memory") {
            return CgroupFiles.keyed("oom_kill", in: files.read(memory + "/memory.oom_control")) ?? 0
        }
        if let v2Directory {
            return CgroupFiles.keyed("oom_kill", in: files.read(v2Directory + "/memory.events")) ?? 0
        }
        return 0
    }

    var throttledPeriods: Int64? {
        if let cpu = v1Directory("cpu") { return CgroupFiles.keyed("nr_throttled", in: files.read(cpu + "/cpu.stat")) }
        if let v2Directory { return CgroupFiles.keyed("nr_throttled", in: files.read(v2Directory + "/cpu.stat")) }
        return nil
    }

    /// Memory charged to it now (v1 `memory.usage_in_bytes`), when known.
    var memoryInUse: Int64? {
        v1Directory("memory").flatMap { CgroupFiles.number(in: files.read($0 + "/memory.usage_in_bytes")) }
    }

    func usage() -> CgroupUsage {
        var usage = CgroupUsage()
        if let cpuacct = v1Directory("cpuacct") {
            let user = CgroupFiles.number(in: files.read(cpuacct + "/cpuacct.usage_user"))
            let system = CgroupFiles.number(in: files.read(cpuacct + "/cpuacct.usage_sys"))
            usage.userCPUMicroseconds = user.map { $0 / 1000 }
            usage.systemCPUMicroseconds = system.map { $0 / 1000 }
        } else if let v2Directory {
            let stat = files.read(v2Directory + "/cpu.stat")
            usage.userCPUMicroseconds = CgroupFiles.keyed("user_usec", in: stat)
            usage.systemCPUMicroseconds = CgroupFiles.keyed("system_usec", in: stat)
        }
        if let memory = v1Directory("memory") {
            usage.peakMemoryBytes = CgroupFiles.number(in: files.read(memory + "/memory.max_usage_in_bytes"))
        } else if let v2Directory {
            usage.peakMemoryBytes = CgroupFiles.number(in: files.read(v2Directory + "/memory.peak"))
        }
        return usage
    }

    /// Makes a given-back task cgroup ready for the next task: `limits` written, the peak and the
    /// CPU accounting set back to zero. False if the kernel refused (the caller removes it then).
    func reset(for limits: CgroupLimits) -> Bool {
        if let memory = v1Directory("memory") {
            let limit = limits.memoryBytes.map { "\($0)" } ?? "-1"
            guard files.write(memory + "/memory.limit_in_bytes", limit) == 0,
                files.write(memory + "/memory.max_usage_in_bytes", "0") == 0
            else { return false }
            if limits.memorySoftBytes != nil || softLimited.load(ordering: .acquiring) {
                let soft = limits.memorySoftBytes.map { "\($0)" } ?? "-1"
                guard files.write(memory + "/memory.soft_limit_in_bytes", soft) == 0 else { return false }
                softLimited.store(limits.memorySoftBytes != nil, ordering: .releasing)
            }
        }
        if let cpu = v1Directory("cpu") {
            guard files.write(cpu + "/cpu.shares", "\(limits.cpuShares ?? 1024)") == 0 else { return false }
            if let quota = limits.cfsQuotaMicroseconds {
                guard files.write(cpu + "/cpu.cfs_period_us", "\(CgroupLimits.cfsPeriodMicroseconds)") == 0,
                    files.write(cpu + "/cpu.cfs_quota_us", "\(quota)") == 0
                else { return false }
            } else if files.write(cpu + "/cpu.cfs_quota_us", "-1") != 0 {
                return false
            }
        }
        if let cpuacct = v1Directory("cpuacct") {
            guard files.write(cpuacct + "/cpuacct.usage", "0") == 0 else { return false }
        }
        return true
    }

    /// Removes it from every hierarchy (it must be empty); true if every directory is gone. With
    /// `retrying`, a directory the kernel still reports busy (its last processes leaving) is tried
    /// again for up to about 4.5 s, sleeping the thread in between.
    @discardableResult
    func remove(retrying: Bool = true) -> Bool {
        files.closeAll()
        var removed = true
        for directory in allDirectories {
            removed = Self.removeDirectory(directory, attempts: retrying ? 50 : 1) && removed
        }
        return removed
    }

    /// rmdir, retried while the kernel still reports the cgroup busy (its last processes leaving).
    static func removeDirectory(_ directory: String, attempts: Int = 50) -> Bool {
        for attempt in 0..<attempts {
            if rmdir(directory) == 0 || errno == ENOENT { return true }
            guard errno == EBUSY else { return false }
            usleep(useconds_t(min(1000 << attempt, 100_000)))
        }
        return false
    }
}
