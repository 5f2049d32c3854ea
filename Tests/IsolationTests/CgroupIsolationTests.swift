import Foundation
import CProcessSpawn
import Isolation
import ProcessSupervision
import SystemTestLock
import Testing
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The parsing and the arithmetic, without any cgroup.
@Suite struct CgroupRulesTests {
    @Test func hierarchiesComeFromMountInfoAndProcCgroup() {
        let mountInfo = """
            31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
            32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
            35 31 0:32 /mesos /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
            40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
            41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
            42 31 0:39 / /sys/fs/cgroup/my\\040pids rw,relatime shared:7 master:2 - cgroup cgroup rw,pids
            43 31 0:40 / /mnt/data rw,relatime shared:9 - ext4 /dev/vdb rw
            """
        let procCgroup = """
            9:name=systemd:/
            7:pids:/p
            4:memory:/mesos/abc
            1:cpu,cpuacct:/
            0::/user.slice
            """
        let hierarchies = CgroupHierarchy.parse(mountInfo: mountInfo, procCgroup: procCgroup)
        #expect(
            hierarchies.map(\.mountPoint) == [
                "/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified",
                "/sys/fs/cgroup/my pids",
            ])
        #expect(hierarchies[3].controllers == ["pids"] && hierarchies[3].ownPath == "/p")
        #expect(hierarchies[0].controllers == ["cpu", "cpuacct"])
        #expect(hierarchies[2].version == .v2)
        // A mount that shows a subtree: the cgroup's directory is found below its mount point.
        #expect(hierarchies[1].directory(of: "/mesos/abc/x") == "/sys/fs/cgroup/memory/abc/x")
        #expect(hierarchies[2].directory(of: "/user.slice") == "/sys/fs/cgroup/unified/user.slice")
    }

    /// The optional limits are unwrapped before they are compared: under AddressSanitizer,
    /// `#expect` on an `Optional<UInt64>` reads past its 9 bytes in a compiler-generated thunk
    /// (a toolchain bug, README "Sanitizers").
    @Test func limitsFollowMesosFormulas() throws {
        let limits = CgroupLimits.fromResources(memoryMegabytes: 128.7, cpus: 1.1, hardCPULimit: true)
        let memory = try #require(limits.memoryBytes)
        #expect(memory == 128 * 1_048_576)
        let cpus = try #require(limits.cpus)
        #expect(cpus == 1.1)
        let quota = try #require(limits.cpuQuota)
        #expect(quota == 1.1)
        // Below 32 MB a task could not even start: Mesos's minimum.
        let smallest = CgroupLimits.fromResources(memoryMegabytes: 4, cpus: nil, hardCPULimit: false)
        let smallestMemory = try #require(smallest.memoryBytes)
        #expect(smallestMemory == 32 << 20)
        // No resource, no limit; a CFS quota needs cpus.
        let none = CgroupLimits.fromResources(memoryMegabytes: nil, cpus: nil, hardCPULimit: true)
        #expect(none == CgroupLimits(memoryBytes: nil, cpus: nil, cpuQuota: nil))
        // A task's own limits (TaskInfo.limits): the memory limit is its mem limit, the CFS quota
        // its cpus limit, whether or not quotas are on; an unlimited one sets none.
        let limited = CgroupLimits.fromResources(
            memoryMegabytes: 128, cpus: 0.5, hardCPULimit: false, memoryLimit: .amount(512), cpuLimit: .amount(2))
        #expect(limited == CgroupLimits(memoryBytes: 512 << 20, memorySoftBytes: 128 << 20, cpus: 0.5, cpuQuota: 2))
        let unlimited = CgroupLimits.fromResources(
            memoryMegabytes: 128, cpus: 0.5, hardCPULimit: true, memoryLimit: .unlimited, cpuLimit: .unlimited)
        #expect(unlimited == CgroupLimits(memoryBytes: nil, memorySoftBytes: 128 << 20, cpus: 0.5, cpuQuota: nil))
        let smallLimit = CgroupLimits.fromResources(
            memoryMegabytes: 8, cpus: nil, hardCPULimit: false, memoryLimit: .amount(16))
        #expect(smallLimit == CgroupLimits(memoryBytes: 32 << 20, cpus: nil, cpuQuota: nil))
        // May burst: the request is a soft limit, and the kernel's first pick when the machine runs
        // short is 1000 - 1000 x request / the machine's memory (Mesos's oom_score_adj).
        let score = try #require(limited.oomScoreAdjustment(totalMemoryBytes: 1024 << 20))
        #expect(score == 875)
        #expect(limited.oomScoreAdjustment(totalMemoryBytes: 0) == nil)
        #expect(smallLimit.oomScoreAdjustment(totalMemoryBytes: 1 << 30) == nil)
    }

    @Test func executorCgroupNamesAreStableSafeAndDistinct() {
        let a = CgroupIsolation.executorCgroupName(frameworkID: "fw-1", executorID: "exec/1 ..")
        #expect(a == CgroupIsolation.executorCgroupName(frameworkID: "fw-1", executorID: "exec/1 .."))
        #expect(a != CgroupIsolation.executorCgroupName(frameworkID: "fw-2", executorID: "exec/1 .."))
        #expect(!a.contains("/") && !a.contains(" ") && a.hasPrefix("spark-mesos-executor-"))
        // The same in every version too: a new executor finds what an older one left.
        #expect(a == "spark-mesos-executor-f80bc2728712f657-exec_1___")
    }

    @Test func memoryLimitMessage() {
        #expect(
            MemoryLimitMessage.text(limit: 256 << 20, peak: 256 << 20)
                == "memory limit 256 MiB reached (peak 256 MiB): killed by the kernel's OOM killer")
    }
}

/// Real cgroups on this machine's hierarchies (v1 controllers and the v2 unified mount). Each test
/// is skipped, with the reason, where no hierarchy is writable.
@Suite(.serialized, .systemTest) struct RealCgroupTests {
    /// Which hierarchies a test uses: all of them (mixed), the v1 controllers alone (containment
    /// by the freezer), or the v2 unified mount alone (containment by cgroup.kill).
    enum Layout: String, CaseIterable, Sendable {
        case mixed, v1Only, v2Only
    }

    static func isolation(
        _ name: String = "test-\(getpid())-\(UInt32.random(in: 0...UInt32.max))", layout: Layout = .mixed
    ) -> CgroupIsolation? {
        var settings = CgroupIsolation.Settings(name: name, hardCPULimits: true)
        let all = CgroupHierarchy.parse(
            mountInfo: (try? String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)) ?? "",
            procCgroup: (try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)) ?? "")
        switch layout {
        case .mixed: settings.hierarchies = all
        case .v1Only: settings.hierarchies = all.filter { $0.version != .v2 }
        case .v2Only: settings.hierarchies = all.filter { $0.version == .v2 }
        }
        guard settings.hierarchies?.isEmpty == false else {
            print("RealCgroupTests skipped for \(layout): no such hierarchy here")
            return nil
        }
        switch CgroupIsolation.detect(settings) {
        case .available(let isolation): return isolation
        case .unavailable(let why):
            print("RealCgroupTests skipped: \(why)")
            return nil
        }
    }

    /// This process's open descriptors on files in `directories`.
    static func descriptors(under directories: [String]) -> [Int32] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return names.compactMap { name -> Int32? in
            guard let fd = Int32(name),
                let target = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(name)"),
                directories.contains(where: { target.hasPrefix($0 + "/") })
            else { return nil }
            return fd
        }
    }

    @Test func aCgroupGetsItsLimitsAJoiningProcessAndIsRemoved() async throws {
        guard let isolation = Self.isolation() else { return }
        defer { isolation.removeAll() }
        print("cgroups under test: \(isolation.summary)")
        let cgroup = try isolation.makeCgroup(
            "task-1", limits: CgroupLimits(memoryBytes: 64 << 20, cpus: 0.5, cpuQuota: 0.5))
        let directories = isolation.directories.map { $0 + "/task-1" }
        for directory in directories { #expect(FileManager.default.fileExists(atPath: directory), "\(directory)") }
        if let memory = directories.first(where: { $0.contains("/memory/") }) {
            #expect(read(memory + "/memory.limit_in_bytes") == "\(64 << 20)")
        }
        if let cpu = directories.first(where: { $0.contains("/cpu/") }) {
            #expect(read(cpu + "/cpu.shares") == "512")
            #expect(read(cpu + "/cpu.cfs_quota_us") == "50000")
        }
        // A process joins before it execs: its very first instruction runs inside, in every
        // hierarchy (created in v2's directory, its one thread moved in v1's).
        let joins = try cgroup.openSpawnJoin()
        let child = try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/sh", arguments: ["sh", "-c", "cat /proc/self/cgroup; exec sleep 300"],
                environment: [], fileDescriptors: [], joinCgroups: joins))
        joins.close()
        #expect(cgroup.processes.contains(child.pid))
        #expect(!cgroup.isEmpty)
        for directory in directories {
            #expect(members(directory).contains(child.pid), "\(directory)")
        }
        // The control files it keeps open are numbered above the executor's other descriptors (the
        // top quarter of a soft limit of 1,024 or more), out of the range a spawned child copies.
        var limit = rlimit()
        if getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0, limit.rlim_cur >= 1024 {
            let kept = Self.descriptors(under: directories)
            #expect(!kept.isEmpty)
            for fd in kept { #expect(fd >= 768, "control file descriptor \(fd)") }
        }
        await cgroup.killAll()
        #expect(await child.wait() == .signaled(SIGKILL))
        #expect(await cgroup.waitUntilEmpty(deadline: .now + .seconds(60)))
        await isolation.destroy(cgroup)
        for directory in directories { #expect(!FileManager.default.fileExists(atPath: directory), "\(directory)") }
    }

    /// `cgroup_init()` zeroes libcgroup's whole controller table and fills a few entries: the
    /// pages left zero are given back, and libcgroup goes on making cgroups from what is left.
    @Test func libcgroupsEmptyTablePagesAreGivenBackAndLibcgroupGoesOn() async throws {
        guard let isolation = Self.isolation(layout: .v1Only) else { return }
        defer { isolation.removeAll() }
        let released = CgroupIsolation.releaseUnusedLibraryMemory()
        #expect(released > 0)
        #expect(CgroupIsolation.releaseUnusedLibraryMemory() == 0)
        let cgroup = try isolation.makeCgroup("task-after-release", limits: CgroupLimits(memoryBytes: 32 << 20))
        let directories = isolation.directories.map { $0 + "/task-after-release" }
        #expect(!directories.isEmpty)
        for directory in directories { #expect(FileManager.default.fileExists(atPath: directory), "\(directory)") }
        if let memory = directories.first(where: { $0.contains("/memory/") }) {
            #expect(read(memory + "/memory.limit_in_bytes") == "\(32 << 20)")
        }
        await isolation.destroy(cgroup)
        for directory in directories { #expect(!FileManager.default.fileExists(atPath: directory), "\(directory)") }
    }

    /// Where the kernel refuses clone3 (before 5.7, or a container's seccomp filter), a spawned
    /// child joins v2 through its `cgroup.procs` instead, before it execs all the same; and a
    /// forked worker, which joins itself, writes v1's `tasks` files and v2's `cgroup.procs`.
    @Test func aChildJoinsEveryHierarchyWithoutClone3AndAProcessJoiningItselfDoesToo() async throws {
        guard let isolation = Self.isolation() else { return }
        defer { isolation.removeAll() }
        let cgroup = try isolation.makeCgroup("task-fallback", limits: .none)
        let directories = isolation.directories.map { $0 + "/task-fallback" }
        cps_spawn_refuse_clone3(1)
        let joins: CgroupJoin
        let child: ChildProcess
        do {
            defer { cps_spawn_refuse_clone3(0) }
            joins = try cgroup.openSpawnJoin()
            child = try ChildProcess.spawn(
                SpawnRequest(
                    executable: "/bin/sleep", arguments: ["sleep", "300"], environment: [], joinCgroups: joins))
        }
        joins.close()
        for directory in directories { #expect(members(directory).contains(child.pid), "\(directory)") }
        // The files a process that joins itself writes "0" to, written the way it writes them; it
        // says so on its stdout once it has.
        let files = try cgroup.openJoinFiles()
        var pipeEnds: [Int32] = [-1, -1]
        #expect(pipe(&pipeEnds) == 0)
        let writes = (0..<files.count).map { "echo 0 >&\(3 + $0)" }.joined(separator: "; ")
        let itself = try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/sh", arguments: ["sh", "-c", writes + "; echo joined; exec sleep 300"],
                environment: [],
                fileDescriptors: [(pipeEnds[1], 1)] + files.enumerated().map { ($0.element, Int32(3 + $0.offset)) }))
        for fd in files { close(fd) }
        close(pipeEnds[1])
        let said = await Self.readOnce(pipeEnds[0])
        #expect(said == "joined\n")
        for directory in directories { #expect(members(directory).contains(itself.pid), "\(directory)") }
        await cgroup.killAll()
        #expect(await child.wait() == .signaled(SIGKILL))
        #expect(await itself.wait() == .signaled(SIGKILL))
        #expect(await cgroup.waitUntilEmpty(deadline: .now + .seconds(60)))
        await isolation.destroy(cgroup)
    }

    /// A spawn whose child, created in its v2 cgroup, is killed at birth (this kernel does that to
    /// a child created in a cgroup that had a `cgroup.kill` while its creator's had none) starts the
    /// program all the same, in that cgroup, and later spawns join through `cgroup.procs` from the
    /// start. No trial child is made beforehand. Where the kernel lets the child live, it is simply
    /// created there.
    @Test func aSpawnWhoseChildIsKilledAtBirthStartsItAnywayInItsCgroup() async throws {
        guard let isolation = Self.isolation() else { return }
        defer {
            isolation.removeAll()
            cps_spawn_forget_kills_at_birth()
        }
        guard let unified = isolation.directories.first(where: { access($0 + "/cgroup.kill", F_OK) == 0 }) else {
            return
        }
        _ = try isolation.makeCgroup("task-killed-behind-our-back", limits: .none)
        let directory = unified + "/task-killed-behind-our-back"
        // Written past the executor's own bookkeeping, which would not offer this directory to a spawn.
        try "1".write(toFile: directory + "/cgroup.kill", atomically: false, encoding: .utf8)
        #expect(ChildProcess.createsChildrenInCgroups)
        var spawned: [ChildProcess] = []
        for _ in 0..<2 {
            let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            #expect(fd >= 0)
            defer { close(fd) }
            let child = try ChildProcess.spawn(
                SpawnRequest(
                    executable: "/bin/sleep", arguments: ["sleep", "300"], environment: [],
                    joinCgroups: CgroupJoin(directory: fd)))
            spawned.append(child)
            #expect(members(directory).contains(child.pid))
        }
        // Whichever way this kernel went, both children run in the cgroup; where it killed the
        // first at birth, the second was not created there at all.
        for child in spawned {
            child.signal(SIGKILL)
            #expect(await child.wait() == .signaled(SIGKILL))
        }
    }

    /// A cgroup that has had a `cgroup.kill` can still be joined by a spawn (this kernel kills a
    /// child created in such a cgroup at birth: the spawn joins it through `cgroup.procs` instead),
    /// and it is not kept as a spare when given back; a clean one is, and is joined as a new one is.
    @Test func aCgroupKilledOnceIsStillJoinedAndNotKeptAsASpare() async throws {
        guard let isolation = Self.isolation() else { return }
        defer { isolation.removeAll() }
        let killed = try isolation.makeTaskCgroup(limits: .none)
        await killed.killAll()
        try await expectJoinable(killed, isolation)
        await isolation.destroy(killed)
        let clean = try isolation.makeTaskCgroup(limits: .none)
        #expect(clean.name != killed.name, "a killed cgroup was kept as a spare")
        let child = try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/true", arguments: ["true"], environment: [], joinCgroups: try clean.openSpawnJoin()))
        #expect(await child.wait() == .exited(0))
        await isolation.destroy(clean)
        let reused = try isolation.makeTaskCgroup(limits: .none)
        #expect(reused.name == clean.name, "the clean spare was not reused")
        try await expectJoinable(reused, isolation)
        await isolation.destroy(reused)
    }

    /// The executor's cgroup weighs what the cgroups in use directly below it weigh together
    /// (1024 per cpu, 1024 for one without `cpus`), never less than the default: task cgroups new
    /// and spare, a pool, not what is nested in the pool; each task keeps its own weight.
    @Test func theExecutorsCgroupWeighsWhatItsCgroupsInUseWeighTogether() async throws {
        guard let isolation = Self.isolation() else { return }
        defer { isolation.removeAll() }
        guard let cpu = isolation.directories.first(where: { read($0 + "/cpu.shares") != nil }) else {
            print("no v1 cpu hierarchy here: nothing to weigh")
            return
        }
        #expect(isolation.summary.contains("weighs what the cgroups in use below it weigh"), "\(isolation.summary)")
        func executorShares() -> String? { read(cpu + "/cpu.shares") }
        #expect(executorShares() == "1024")
        let two = try isolation.makeTaskCgroup(limits: CgroupLimits(cpus: 2))
        #expect(executorShares() == "2048")
        let half = try isolation.makeTaskCgroup(limits: CgroupLimits(cpus: 0.5))
        #expect(executorShares() == "2560")
        #expect(read(cpu + "/" + half.name + "/cpu.shares") == "512")
        let unweighed = try isolation.makeTaskCgroup(limits: .none)
        #expect(executorShares() == "3584")
        let pool = try isolation.makeCgroup("pool-weigh", limits: CgroupLimits(cpus: 1))
        let worker = try isolation.makeCgroup("worker-1", limits: .none, in: pool)
        #expect(executorShares() == "4608")
        await isolation.destroy(worker)
        #expect(executorShares() == "4608")
        await isolation.destroy(two)
        #expect(executorShares() == "2560")
        // A spare serves the next task with that task's weight.
        let reused = try isolation.makeTaskCgroup(limits: CgroupLimits(cpus: 3))
        #expect(reused.name == two.name)
        #expect(executorShares() == "5632")
        // Given back twice, a cgroup is taken away once.
        await isolation.destroy(half)
        #expect(executorShares() == "5120")
        await isolation.destroy(half)
        #expect(executorShares() == "5120")
        for cgroup in [reused, unweighed, pool] { await isolation.destroy(cgroup) }
        #expect(executorShares() == "1024")
    }

    /// A process spawned into `cgroup` runs, and is in it in every hierarchy, until killed with it.
    private func expectJoinable(_ cgroup: Cgroup, _ isolation: CgroupIsolation) async throws {
        let joins = try cgroup.openSpawnJoin()
        let child = try ChildProcess.spawn(
            SpawnRequest(executable: "/bin/sleep", arguments: ["sleep", "300"], environment: [], joinCgroups: joins))
        joins.close()
        for directory in isolation.directories.map({ $0 + "/" + cgroup.name }) {
            #expect(members(directory).contains(child.pid), "\(directory)")
        }
        await cgroup.killAll()
        #expect(await child.wait() == .signaled(SIGKILL))
        #expect(await cgroup.waitUntilEmpty(deadline: .now + .seconds(60)))
    }

    /// A task cgroup given back empty and clean serves the next task: with that task's limits, and
    /// with its peak and CPU accounting starting from zero. The first task's `Cgroup` is inert.
    @Test func aTaskCgroupGivenBackCleanServesTheNextTaskWithItsOwnLimits() async throws {
        guard let isolation = Self.isolation() else { return }
        defer { isolation.removeAll() }
        let first = try isolation.makeTaskCgroup(
            limits: CgroupLimits(memoryBytes: 64 << 20, cpus: 0.5, cpuQuota: 0.5))
        let joins = try first.openSpawnJoin()
        // Busy for a while and 8 MiB touched, so the accounting has something to reset.
        let child = try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/sh",
                arguments: [
                    "sh", "-c",
                    "x=$(head -c 8000000 /dev/zero | tr '\\0' a); i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done",
                ],
                environment: ["PATH=/usr/bin:/bin"], fileDescriptors: [], joinCgroups: joins))
        joins.close()
        #expect(await child.wait() == .exited(0))
        let used = first.usage()
        await isolation.destroy(first)
        #expect(first.isReleased && first.processes.isEmpty && first.usage() == CgroupUsage())
        #expect(throws: IsolationError.self) { try first.openSpawnJoin() }
        #expect(throws: IsolationError.self) { try first.openJoinFiles() }

        let second = try isolation.makeTaskCgroup(limits: CgroupLimits(memoryBytes: 48 << 20, cpus: 2))
        #expect(second.name == first.name, "the spare was not reused")
        let directories = isolation.directories.map { $0 + "/" + second.name }
        if let memory = directories.first(where: { $0.contains("/memory/") }) {
            #expect(read(memory + "/memory.limit_in_bytes") == "\(48 << 20)")
            let peak = try #require(Int64(read(memory + "/memory.max_usage_in_bytes") ?? ""))
            #expect(peak < (used.peakMemoryBytes ?? .max) && peak <= 1 << 20, "peak \(peak) after \(used)")
        }
        if let cpu = directories.first(where: { $0.contains("/cpu/") }) {
            #expect(read(cpu + "/cpu.shares") == "2048")
            #expect(read(cpu + "/cpu.cfs_quota_us") == "-1")
        }
        if let cpuacct = directories.first(where: { $0.contains("/cpuacct/") }) {
            #expect(read(cpuacct + "/cpuacct.usage") == "0")
        }
        let usage = second.usage()
        #expect((usage.userCPUMicroseconds ?? 0) + (usage.systemCPUMicroseconds ?? 0) == 0, "\(usage)")

        // A task that made a cgroup of its own inside its task's is not kept: everything goes.
        for directory in directories { #expect(mkdir(directory + "/nested", 0o755) == 0, "\(directory)") }
        await isolation.destroy(second)
        for directory in directories { #expect(!FileManager.default.fileExists(atPath: directory), "\(directory)") }

        // Spares go on request (an idle executor) and at exit.
        let third = try isolation.makeTaskCgroup(limits: .none)
        await isolation.destroy(third)
        let spare = isolation.directories.map { $0 + "/" + third.name }
        for directory in spare { #expect(FileManager.default.fileExists(atPath: directory), "\(directory)") }
        isolation.removeSpares()
        for directory in spare { #expect(!FileManager.default.fileExists(atPath: directory), "\(directory)") }
    }

    /// A task that may burst above its mem (a mem limit above it) has its mem as a soft limit,
    /// as Mesos writes it; its cgroup, reused by a task that may not burst, has none again.
    @Test func aBurstingTasksSoftLimitIsWrittenAndUndoneOnReuse() async throws {
        guard let isolation = Self.isolation() else { return }
        defer { isolation.removeAll() }
        func bursting(_ megabytes: Double) -> CgroupLimits {
            .fromResources(memoryMegabytes: megabytes, cpus: nil, hardCPULimit: false, memoryLimit: .amount(96))
        }
        let soft = try #require(bursting(32).memorySoftBytes)
        #expect(soft == 32 << 20)
        let first = try isolation.makeTaskCgroup(limits: bursting(32))
        let memory = isolation.directories.first { $0.contains("/memory/") }.map { $0 + "/" + first.name }
        if let memory {
            #expect(read(memory + "/memory.soft_limit_in_bytes") == "\(32 << 20)")
            #expect(read(memory + "/memory.limit_in_bytes") == "\(96 << 20)")
        }
        await isolation.destroy(first)
        let second = try isolation.makeTaskCgroup(limits: bursting(48))
        #expect(second.name == first.name, "the spare was not reused")
        if let memory { #expect(read(memory + "/memory.soft_limit_in_bytes") == "\(48 << 20)") }
        await isolation.destroy(second)
        let third = try isolation.makeTaskCgroup(limits: CgroupLimits(memoryBytes: 64 << 20))
        #expect(third.name == first.name, "the spare was not reused")
        if let memory {
            // No soft limit: the kernel's "unlimited", the largest page count it holds.
            let unlimited = try #require(Int64(read(memory + "/memory.soft_limit_in_bytes") ?? ""))
            #expect(unlimited > 1 << 50, "\(unlimited)")
        }
        await isolation.destroy(third)
    }

    @Test(arguments: Layout.allCases)
    func killAllReachesProcessesThatLeftTheSessionAndNestedCgroups(layout: Layout) async throws {
        guard let isolation = Self.isolation(layout: layout) else { return }
        defer { isolation.removeAll() }
        let pool = try isolation.makeCgroup("pool", limits: .none)
        let worker = try isolation.makeCgroup("worker", limits: .none, in: pool)
        // The shell prints the escapee's pid once it has started it, from inside the worker's cgroup.
        var pipeEnds: [Int32] = [-1, -1]
        #expect(pipe(&pipeEnds) == 0)
        let joins = try worker.openSpawnJoin()
        let child = try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/sh", arguments: ["sh", "-c", "setsid sleep 300 & echo $!; exec sleep 300"],
                environment: ["PATH=/usr/bin:/bin"], fileDescriptors: [(pipeEnds[1], 1)], joinCgroups: joins))
        joins.close()
        close(pipeEnds[1])
        let line = await Self.readOnce(pipeEnds[0])
        let escaped = try #require(Int32(line.trimmingCharacters(in: .whitespacesAndNewlines)))
        #expect(pool.processes.contains(escaped) && pool.processes.contains(child.pid))
        await pool.killAll()
        #expect(await child.wait() == .signaled(SIGKILL))
        #expect(
            await ProcessObservation.waitForExit(of: escaped, timeoutMilliseconds: 60_000), "pid \(escaped) survived")
        #expect(await pool.waitUntilEmpty(deadline: .now + .seconds(60)))
        await isolation.destroy(worker)
        await isolation.destroy(pool)
    }

    @Test func leftoversOfAnExecutorWithTheSameNameAreRemovedAtStart() async throws {
        let name = "test-leftover-\(getpid())"
        guard let first = Self.isolation(name) else { return }
        let cgroup = try first.makeCgroup("task-1", limits: .none)
        let joins = try cgroup.openSpawnJoin()
        let child = try ChildProcess.spawn(
            SpawnRequest(executable: "/bin/sleep", arguments: ["sleep", "300"], environment: [], joinCgroups: joins))
        joins.close()
        // As if that executor had been killed with SIGKILL: a new one with the same name cleans up.
        guard let second = Self.isolation(name) else { return }
        defer { second.removeAll() }
        #expect(await child.wait() == .signaled(SIGKILL))
        for directory in second.directories {
            #expect(FileManager.default.fileExists(atPath: directory))
            #expect(!FileManager.default.fileExists(atPath: directory + "/task-1"), "\(directory)/task-1")
        }
    }

    /// What one read of `reader` gives (up to 64 bytes), off the cooperative threads; closes it.
    static func readOnce(_ reader: Int32) async -> String {
        await BlockingThread.run {
            var bytes = [UInt8](repeating: 0, count: 64)
            let count = Glibc.read(reader, &bytes, bytes.count)
            close(reader)
            return String(decoding: bytes.prefix(max(0, count)), as: UTF8.self)
        }
    }

    /// The pids in `directory`'s `cgroup.procs`.
    private func members(_ directory: String) -> [Int32] {
        (read(directory + "/cgroup.procs") ?? "").split(separator: "\n").compactMap { Int32($0) }
    }

    private func read(_ path: String) -> String? {
        (try? String(contentsOfFile: path, encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
