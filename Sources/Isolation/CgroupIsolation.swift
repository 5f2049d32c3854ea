import CCgroup
import ProcessSupervision
import Synchronization
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The executor's cgroup and everything nested in it: one cgroup per task, worker and pool, with
/// limits, usage and OOM reporting, nothing escaping, and cleanup.
///
/// Everything lives under the executor's own cgroup (from /proc/self/cgroup; under a Mesos agent
/// that is the container's) or under a configured parent, in a cgroup named after the executor;
/// nothing else is ever touched. v1 hierarchies give limits and accounting (memory, cpu, cpuacct,
/// pids, freezer); the v2 hierarchy, where mounted, gives containment (`cgroup.kill`,
/// `cgroup.events`) and, where it has controllers, limits.
public final class CgroupIsolation: Sendable {
    /// What ``detect(_:)`` found.
    public enum Detection: Sendable {
        case available(CgroupIsolation)
        /// Tasks still run, without cgroups; `why` says what is missing.
        case unavailable(why: String)
    }

    public struct Settings: Sendable {
        /// The executor's cgroup name (see ``executorCgroupName(frameworkID:executorID:)``).
        public var name: String
        /// A cgroup path (in every hierarchy) to nest under instead of our own cgroup.
        public var parent: String?
        /// CFS quotas from `cpus` (hard CPU limits), like an agent's `--cgroups_enable_cfs`.
        public var hardCPULimits: Bool
        /// The hierarchies (default: read from /proc/self).
        public var hierarchies: [CgroupHierarchy]?

        public init(name: String, parent: String? = nil, hardCPULimits: Bool = false) {
            self.name = name
            self.parent = parent
            self.hardCPULimits = hardCPULimits
        }
    }

    /// The v1 controllers used: limits (memory, cpu), accounting (cpuacct, memory) and, where the v2
    /// hierarchy cannot kill a whole cgroup (`cgroup.kill`, Linux 5.14), containment (freezer).
    /// Each hierarchy costs a mkdir and an rmdir per task, so nothing unused is joined.
    static let v1Controllers = ["memory", "cpu", "cpuacct", "freezer"]

    public let settings: Settings
    /// A line for the log: what was found and what will be used.
    public let summary: String
    private let v1: [(hierarchy: CgroupHierarchy, basePath: String)]
    private let v2: (hierarchy: CgroupHierarchy, basePath: String, controllers: Set<String>)?
    private let sequence = Atomic<Int>(0)
    /// Task cgroups given back empty and clean, ready for the next task (see ``makeTaskCgroup(limits:)``).
    private let spares = LockedValue<[CgroupDirectory]>([])
    /// At most this many wait as spares; more are removed.
    static let maximumSpares = 16
    /// The CPU weight of the executor's cgroup, which follows the cgroups in use below it (see
    /// ``weigh(_:adding:)``), and the file it is written to (v1 `cpu.shares` or v2 `cpu.weight`).
    private let weight = LockedValue<ExecutorWeight>(ExecutorWeight())
    private let weightFile: (path: String, v2: Bool)?
    private let executorFiles = CgroupControlFiles()

    private init(
        settings: Settings, summary: String, v1: [(hierarchy: CgroupHierarchy, basePath: String)],
        v2: (hierarchy: CgroupHierarchy, basePath: String, controllers: Set<String>)?
    ) {
        self.settings = settings
        self.summary = summary
        self.v1 = v1
        self.v2 = v2
        if let cpu = v1.first(where: { $0.hierarchy.controllers.contains("cpu") }) {
            weightFile = (cpu.hierarchy.directory(of: cpu.basePath) + "/cpu.shares", false)
        } else if let v2, v2.controllers.contains("cpu") {
            weightFile = (v2.hierarchy.directory(of: v2.basePath) + "/cpu.weight", true)
        } else {
            weightFile = nil
        }
    }

    /// Whether memory limits are enforced (a v1 memory hierarchy, or v2 with its memory controller).
    public var limitsMemory: Bool {
        v1.contains { $0.hierarchy.controllers.contains("memory") } || v2?.controllers.contains("memory") == true
    }

    /// Above the numbers of the control-file descriptors the executor keeps open: grow the
    /// descriptor table this far at start (`DescriptorTable.reserve(below:)`), while one thread runs.
    public static var keptDescriptorsEnd: Int32 { CgroupControlFiles.regionEnd }

    /// A stable, safe cgroup name for an executor: the same ids give the same name, so a restarted
    /// executor finds (and removes) what a killed one left.
    public static func executorCgroupName(frameworkID: String, executorID: String) -> String {
        let hash = stableHashHex(Array(frameworkID.utf8) + [0] + Array(executorID.utf8))
        let safe = String(
            executorID.unicodeScalars.prefix(60).map { scalar -> Character in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                        || "-_".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            })
        return "spark-mesos-executor-" + hash + "-" + safe
    }

    /// Finds the hierarchies, removes what an earlier executor with the same name left, and creates
    /// the executor's cgroup. Never throws: without cgroups, tasks run anyway.
    public static func detect(_ settings: Settings) -> Detection {
        let hierarchies =
            settings.hierarchies
            ?? CgroupHierarchy.parse(
                mountInfo: CgroupFiles.read("/proc/self/mountinfo") ?? "",
                procCgroup: CgroupFiles.read("/proc/self/cgroup") ?? "")
        var problems: [String] = []
        var v1: [(hierarchy: CgroupHierarchy, basePath: String)] = []
        var v2: (hierarchy: CgroupHierarchy, basePath: String, controllers: Set<String>)?
        func base(_ hierarchy: CgroupHierarchy) -> String {
            let parent = settings.parent ?? hierarchy.ownPath
            return (parent.hasSuffix("/") ? parent : parent + "/") + settings.name
        }
        func writable(_ hierarchy: CgroupHierarchy) -> Bool {
            let parent = hierarchy.directory(of: settings.parent ?? hierarchy.ownPath)
            guard access(parent, W_OK) == 0 else {
                problems.append("\(parent) is not writable (\(errnoText(errno)))")
                return false
            }
            return true
        }
        let unifiedCanKill = hierarchies.contains { $0.version == .v2 && writable($0) } && kernelHasCgroupKill()
        let controllers = v1Controllers.filter { !(unifiedCanKill && $0 == "freezer") }
        let wanted = hierarchies.filter { !$0.controllers.filter(controllers.contains).isEmpty }
        if !wanted.isEmpty {
            let rc = cgroup_init()
            if rc != 0 {
                problems.append("libcgroup could not start: \(libcgroupDescription(rc))")
            } else {
                for hierarchy in wanted where writable(hierarchy) { v1.append((hierarchy, base(hierarchy))) }
            }
        }
        if let unified = hierarchies.first(where: { $0.version == .v2 }), writable(unified) {
            let available = Set(
                (CgroupFiles.read(unified.directory(of: settings.parent ?? unified.ownPath) + "/cgroup.controllers")
                    ?? "").split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init))
            v2 = (unified, base(unified), available.intersection(["memory", "cpu", "pids"]))
        }
        let missing = controllers.filter { controller in
            !v1.contains { $0.hierarchy.controllers.contains(controller) }
        }
        guard !v1.isEmpty || v2 != nil else {
            let why = hierarchies.isEmpty ? "no cgroup hierarchy is mounted" : problems.joined(separator: "; ")
            return .unavailable(why: why.isEmpty ? "no usable cgroup hierarchy" : why)
        }
        // v2 controllers are used only for what no v1 hierarchy gives.
        if var unified = v2 {
            unified.controllers = unified.controllers.filter { missing.contains($0) }
            v2 = unified
        }
        var parts: [String] = []
        for (hierarchy, path) in v1 {
            let used = hierarchy.controllers.filter(controllers.contains).joined(separator: ",")
            parts.append("v1 \(used) at \(hierarchy.directory(of: path))")
        }
        if let v2 {
            let controllers =
                v2.controllers.isEmpty
                ? "no controllers used" : "controllers \(v2.controllers.sorted().joined(separator: ","))"
            parts.append(
                "v2 at \(v2.hierarchy.directory(of: v2.basePath)) (\(controllers); containment by cgroup.kill; spawned processes created in their v2 cgroup, or joining it through cgroup.procs where the kernel refuses or kills such a child)"
            )
        }
        var summary = "cgroups: " + parts.joined(separator: "; ")
        let unlimited = missing.filter { controller in v2?.controllers.contains(controller) != true }
        if !unlimited.isEmpty { summary += "; not available: \(unlimited.joined(separator: ","))" }
        if settings.hardCPULimits { summary += "; CFS quotas on" }
        if v1.contains(where: { $0.hierarchy.controllers.contains("cpu") }) || v2?.controllers.contains("cpu") == true {
            summary += "; the executor's cgroup weighs what the cgroups in use below it weigh together"
        }
        let isolation = CgroupIsolation(settings: settings, summary: summary, v1: v1, v2: v2)
        do {
            try isolation.createExecutorCgroup()
        } catch {
            return .unavailable(why: "cannot create the executor's cgroup: \(error)")
        }
        return .available(isolation)
    }

    /// `cgroup.kill` arrived in Linux 5.14.
    static func kernelHasCgroupKill() -> Bool {
        let release = CgroupFiles.read("/proc/sys/kernel/osrelease") ?? ""
        let numbers = release.split(whereSeparator: { !$0.isNumber }).prefix(2).compactMap { Int($0) }
        guard numbers.count == 2 else { return false }
        return numbers[0] > 5 || (numbers[0] == 5 && numbers[1] >= 14)
    }

    // MARK: The executor's cgroup

    private func createExecutorCgroup() throws(IsolationError) {
        // Leftovers of an executor with the same ids (killed with SIGKILL): kill and remove them.
        for (hierarchy, path) in v1 { Self.removeTree(hierarchy.directory(of: path)) }
        if let v2 { Self.removeTree(v2.hierarchy.directory(of: v2.basePath)) }
        for (hierarchy, path) in v1 {
            let directory = hierarchy.directory(of: path)
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                throw .systemCall("creating \(directory)", errno: errno)
            }
        }
        if let v2 {
            let directory = v2.hierarchy.directory(of: v2.basePath)
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                throw .systemCall("creating \(directory)", errno: errno)
            }
            if !v2.controllers.isEmpty {
                try enableV2Controllers(v2.controllers, in: v2.hierarchy)
            }
        }
    }

    /// v2's no-internal-processes rule: controllers can be enabled for children only in a cgroup
    /// without processes of its own. The executor moves itself into a leaf of its own cgroup first.
    private func enableV2Controllers(_ controllers: Set<String>, in hierarchy: CgroupHierarchy) throws(IsolationError) {
        let own = hierarchy.directory(of: settings.parent ?? hierarchy.ownPath)
        let base = hierarchy.directory(of: v2!.basePath)
        let enable = controllers.sorted().map { "+" + $0 }.joined(separator: " ")
        if settings.parent == nil {
            let leaf = own + "/spark-mesos-executor-leaf"
            _ = mkdir(leaf, 0o755)
            let moved = CgroupFiles.write(leaf + "/cgroup.procs", "\(getpid())")
            guard moved == 0 else { throw .systemCall("moving the executor into \(leaf)", errno: moved) }
        }
        let rc = CgroupFiles.write(own + "/cgroup.subtree_control", enable)
        guard rc == 0 else { throw .systemCall("enabling \(enable) in \(own)", errno: rc) }
        let inner = CgroupFiles.write(base + "/cgroup.subtree_control", enable)
        guard inner == 0 else { throw .systemCall("enabling \(enable) in \(base)", errno: inner) }
    }

    /// Kills everything in `directory` and below and removes the cgroups bottom-up.
    static func removeTree(_ directory: String) {
        guard CgroupFiles.isDirectory(directory) else { return }
        for child in CgroupFiles.subdirectories(directory) { removeTree(directory + "/" + child) }
        if CgroupFiles.write(directory + "/cgroup.kill", "1") != 0 {
            for pid in CgroupFiles.pids(directory + "/cgroup.procs") { kill(pid, SIGKILL) }
        }
        for _ in 0..<200 {
            guard !CgroupFiles.pids(directory + "/cgroup.procs").isEmpty else { break }
            ProcessReaper.shared.sweepOrphans()
            usleep(5000)
        }
        _ = CgroupDirectory.removeDirectory(directory)
    }

    // MARK: Cgroups for tasks and workers

    /// A cgroup name for `id` (a task id, say) that no other cgroup of this executor has:
    /// `<kind>-<n>-<id in a safe alphabet>`.
    public func uniqueName(_ kind: String, _ id: String) -> String {
        let number = sequence.add(1, ordering: .relaxed).newValue
        let safe = String(
            id.unicodeScalars.prefix(80).map { scalar -> Character in
                scalar.isASCII
                    && (scalar.properties.isAlphabetic || ("0"..."9").contains(scalar)
                        || "-_".unicodeScalars.contains(scalar))
                    ? Character(scalar) : "_"
            })
        return "\(kind)-\(number)-\(safe)"
    }

    /// Creates `name` (a single path component) under the executor's cgroup, or under `parent`,
    /// with `limits` written before any process joins.
    public func makeCgroup(_ name: String, limits: CgroupLimits, in parent: Cgroup? = nil) throws(IsolationError)
        -> Cgroup
    {
        let relative = (parent.map { $0.name + "/" } ?? "") + name
        var directories: [(controllers: [String], directory: String)] = []
        if !v1.isEmpty {
            // libcgroup names a cgroup by its path below each mount point; ours differ per hierarchy
            // (the memory cgroup of a process is often not its cpu cgroup), so one group per hierarchy
            // would be needed in general. Where the paths agree (the usual case) one group does it all.
            var groups: [String: [CgroupHierarchy]] = [:]
            for (hierarchy, path) in v1 {
                groups[hierarchy.libcgroupName(of: path + "/" + relative), default: []].append(hierarchy)
            }
            for (libcgroupName, hierarchies) in groups.sorted(by: { $0.key < $1.key }) {
                try createV1(libcgroupName, hierarchies: hierarchies, limits: limits)
                for hierarchy in hierarchies {
                    directories.append(
                        (hierarchy.controllers, hierarchy.mountPoint + "/" + libcgroupName))
                }
            }
        }
        var v2Directory: String?
        if let v2 {
            let directory = v2.hierarchy.directory(of: v2.basePath + "/" + relative)
            guard mkdir(directory, 0o755) == 0 || errno == EEXIST else {
                let code = errno
                for (_, created) in directories { _ = CgroupDirectory.removeDirectory(created) }
                throw .systemCall("creating \(directory)", errno: code)
            }
            v2Directory = directory
            if v2.controllers.contains("memory") {
                if let bytes = limits.memoryBytes { CgroupFiles.write(directory + "/memory.max", "\(bytes)") }
                // As Mesos's v2 memory controller: the request is protected from reclaim.
                if let bytes = limits.memorySoftBytes ?? limits.memoryBytes {
                    CgroupFiles.write(directory + "/memory.low", "\(bytes)")
                }
            }
            if v2.controllers.contains("cpu"), let weight = limits.cpuWeight {
                CgroupFiles.write(directory + "/cpu.weight", "\(weight)")
                if let quota = limits.cfsQuotaMicroseconds {
                    CgroupFiles.write(directory + "/cpu.max", "\(quota) \(CgroupLimits.cfsPeriodMicroseconds)")
                }
            }
        }
        let directory = CgroupDirectory(name: relative, v1Directories: directories, v2Directory: v2Directory)
        directory.madeWith(limits)
        let cgroup = Cgroup(directory: directory, limits: limits)
        if parent == nil { weigh(cgroup, adding: true) }
        return cgroup
    }

    /// A cgroup for one task (a command task, or the fresh worker of a fine-mode closure) with
    /// `limits`: a spare one when there is one, else a new `task-<n>`.
    ///
    /// Making and removing a cgroup in four hierarchies costs the executor about half a millisecond
    /// (mkdir and rmdir of memory cgroups are the dearest); a task cgroup given back empty, with no
    /// OOM kill, no nested cgroup and almost nothing charged to it is kept instead, and the next
    /// task gets it with its own limits written and its peak and CPU accounting reset. Where the v2
    /// hierarchy's controllers are used, whose accounting cannot be reset, each task gets a new one.
    public func makeTaskCgroup(limits: CgroupLimits) throws(IsolationError) -> Cgroup {
        while let spare = spares.withLock({ $0.popLast() }) {
            if spare.reset(for: limits) {
                let cgroup = Cgroup(directory: spare, limits: limits, recyclable: true)
                weigh(cgroup, adding: true)
                return cgroup
            }
            spare.remove()
        }
        let cgroup = try makeCgroup("task-\(sequence.add(1, ordering: .relaxed).newValue)", limits: limits)
        return Cgroup(directory: cgroup.directory, limits: limits, recyclable: v2?.controllers.isEmpty ?? true)
    }

    private func createV1(_ name: String, hierarchies: [CgroupHierarchy], limits: CgroupLimits) throws(IsolationError) {
        guard let group = cgroup_new_cgroup(name) else {
            throw .library("cgroup_new_cgroup(\(name))", code: Int32(ECGFAIL))
        }
        let owned = LibcgroupGroup(group: group)
        for controller in hierarchies.flatMap(\.controllers) where Self.v1Controllers.contains(controller) {
            guard let handle = cgroup_add_controller(group, controller) else {
                throw .library("adding \(controller) to \(name)", code: Int32(ECGFAIL))
            }
            switch controller {
            case "memory":
                if let bytes = limits.memoryBytes { cgroup_add_value_uint64(handle, "memory.limit_in_bytes", bytes) }
                if let bytes = limits.memorySoftBytes {
                    cgroup_add_value_uint64(handle, "memory.soft_limit_in_bytes", bytes)
                }
            case "cpu":
                if let shares = limits.cpuShares { cgroup_add_value_uint64(handle, "cpu.shares", shares) }
                if let quota = limits.cfsQuotaMicroseconds {
                    cgroup_add_value_int64(handle, "cpu.cfs_period_us", CgroupLimits.cfsPeriodMicroseconds)
                    cgroup_add_value_int64(handle, "cpu.cfs_quota_us", quota)
                }
            default:
                break
            }
        }
        // Ownership stays the executor's (no chown of every file).
        let rc = cgroup_create_cgroup(group, 1)
        guard rc == 0 else { throw .library("creating cgroup \(name)", code: rc) }
        withExtendedLifetime(owned) {}
    }

    /// Adds (or takes away) the CPU weight of a cgroup directly below the executor's to (from) the
    /// executor's cgroup's own: the executor's cgroup weighs what the cgroups in use below it weigh
    /// together (1024 per cpu of a task's `cpus`, 1024 for a cgroup without `cpus`, v1's default),
    /// never less than the default, as if they were not nested. Left at the default, every task
    /// the executor runs would together weigh as one thread against the executor's own threads and
    /// whatever else shares the parent cgroup, which then preempt them far more often than when
    /// they are not grouped (README, Isolation). A task's own weight still divides the group
    /// between the tasks.
    private func weigh(_ cgroup: Cgroup, adding: Bool) {
        guard let weightFile else { return }
        let shares = cgroup.limits.cpuShares ?? 1024
        weight.withLock { weight in
            weight.inUse = adding ? weight.inUse + shares : weight.inUse - min(shares, weight.inUse)
            let target = min(max(weight.inUse, 1024), 262_144)
            guard target != weight.written else { return }
            weight.written = target
            let value = weightFile.v2 ? min(max(target * 100 / 1024, 1), 10_000) : target
            executorFiles.write(weightFile.path, "\(value)")
        }
    }

    /// The executor's cgroup directories (one per hierarchy used).
    public var directories: [String] {
        v1.map { $0.hierarchy.directory(of: $0.basePath) }
            + (v2.map { [$0.hierarchy.directory(of: $0.basePath)] } ?? [])
    }

    /// Gives back a cgroup its owner is done with: kills what is left, waits (up to `timeout`) for
    /// it to be empty, and removes it, or keeps a task cgroup as a spare (``makeTaskCgroup(limits:)``).
    /// Nested cgroups must be given back first. The `Cgroup` is inert afterwards.
    @discardableResult
    public func destroy(_ cgroup: Cgroup, timeout: Duration = .seconds(10)) async -> Bool {
        // Most cgroups are empty by now (their task or worker ended and was reaped), and nothing
        // can enter an empty one but our own joins: no kill then, which on v1 without `cgroup.kill`
        // is a freeze, a wait for it, a walk of its processes and a thaw.
        var empty = cgroup.isEmpty
        if !empty {
            await cgroup.killAll()
            empty = await cgroup.waitUntilEmpty(deadline: .now + timeout)
        }
        guard cgroup.release() else { return true }
        if !cgroup.name.contains("/") { weigh(cgroup, adding: false) }
        let directory = cgroup.directory
        let nested = directory.hasChildren
        if empty, cgroup.recyclable, !directory.wasKilled, directory.oomKills == 0, !nested,
            (directory.memoryInUse ?? 0) <= Self.spareMemoryCharge
        {
            let kept = spares.withLock { spares in
                guard spares.count < Self.maximumSpares else { return false }
                spares.append(directory)
                return true
            }
            if kept { return true }
        }
        // Empty, it goes with a plain rmdir (libcgroup's delete would first move its tasks to the
        // parent, reading files for nothing), at once. Cgroups a task made inside its own, and a
        // cgroup that would not empty (a process stuck in the kernel), take waits and retries of up
        // to seconds: on a thread of their own, not one of the executor's task threads.
        if empty, !nested, directory.remove(retrying: false) { return true }
        let emptied = empty
        return await BlockingThread.run {
            if nested {
                directory.files.closeAll()
                for path in directory.allDirectories { Self.removeTree(path) }
            }
            return directory.remove() && emptied
        }
    }

    /// Removes the spare task cgroups (the executor calls this when it has been idle a while, so an
    /// idle executor leaves nothing but its own cgroup). The next task cgroup is made anew.
    public func removeSpares() {
        for spare in spares.withLock({ spares in
            defer { spares = [] }
            return spares
        }) {
            spare.remove()
        }
    }

    /// A spare may hold this much charged memory (kernel objects, page cache of what its last task
    /// wrote); more would count against the next task's limit and peak.
    static let spareMemoryCharge: Int64 = 1 << 20

    /// At exit: kills whatever is left in any of our cgroups and removes them all, with the
    /// executor's own.
    public func removeAll() {
        for spare in spares.withLock({ spares in
            defer { spares = [] }
            return spares
        }) {
            spare.files.closeAll()
        }
        executorFiles.closeAll()
        for (hierarchy, path) in v1 { Self.removeTree(hierarchy.directory(of: path)) }
        if let v2 { Self.removeTree(v2.hierarchy.directory(of: v2.basePath)) }
    }
}

extension CgroupIsolation {
    /// Gives back the pages of libcgroup's controller table that hold nothing: `cgroup_init()`
    /// zeroes the whole table, about 800 KB that would otherwise stay in the executor's memory
    /// for good, and a machine fills a few of its hundred entries. Done under libcgroup's own lock
    /// on the table, so that no libcgroup call reads or fills it meanwhile; a later call finds
    /// nothing more to give back. Returns the bytes given back.
    @discardableResult
    public static func releaseUnusedLibraryMemory() -> Int {
        // Exported by libcgroup though declared in none of its public headers.
        guard let table = LoadedSymbol(named: "cg_mount_table"), table.size > 0,
            let lock = LoadedSymbol(named: "cg_mount_table_lock")
        else { return 0 }
        let rwlock = lock.address.assumingMemoryBound(to: pthread_rwlock_t.self)
        pthread_rwlock_wrlock(rwlock)
        defer { pthread_rwlock_unlock(rwlock) }
        return ResidentMemory.releaseZeroPages(at: table.address, length: table.size)
    }
}

/// What the executor's cgroup weighs (see `CgroupIsolation.weigh(_:adding:)`), in v1 `cpu.shares`.
private struct ExecutorWeight {
    /// The weights of the cgroups in use directly below it, together.
    var inUse: UInt64 = 0
    /// The weight last written (the kernel's default until one is).
    var written: UInt64 = 1024
}
