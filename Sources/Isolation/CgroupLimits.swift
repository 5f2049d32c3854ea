#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Limits for one cgroup, in Mesos's terms. A nil field sets no limit (never a made-up one).
public struct CgroupLimits: Sendable, Equatable {
    /// The hard memory limit in bytes (`memory.limit_in_bytes` / `memory.max`).
    public var memoryBytes: UInt64?
    /// For a task that may burst above its `mem` (a `mem` limit above it): the `mem` itself, the
    /// soft limit the kernel reclaims back to first when memory runs short
    /// (`memory.soft_limit_in_bytes` / `memory.low`).
    public var memorySoftBytes: UInt64?
    /// CPU weight from this many cpus (`cpu.shares` = 1024 per cpu / `cpu.weight` = 100 per cpu).
    public var cpus: Double?
    /// CPU time capped at this many cpus per 100 ms period (CFS quota): a task's own `cpus` limit,
    /// or its `cpus` where CFS quotas are on (an agent's `--cgroups_enable_cfs`).
    public var cpuQuota: Double?

    public init(
        memoryBytes: UInt64? = nil, memorySoftBytes: UInt64? = nil, cpus: Double? = nil, cpuQuota: Double? = nil
    ) {
        self.memoryBytes = memoryBytes
        self.memorySoftBytes = memorySoftBytes
        self.cpus = cpus
        self.cpuQuota = cpuQuota
    }

    public static let none = CgroupLimits()

    /// Mesos's smallest memory limit: below it a task cannot even start.
    public static let minimumMemoryBytes: UInt64 = 32 * 1024 * 1024

    /// A limit above a resource's request (Mesos's `TaskInfo.limits`): an amount, or none at all.
    public enum Limit: Sendable, Equatable {
        case amount(Double)
        case unlimited
    }

    /// From Mesos resources, as Mesos's cgroups isolators size a container: `mem` in MB (Mesos MB
    /// are MiB, truncated to whole MB, at least 32 MB) is the hard memory limit unless a `mem`
    /// limit is given (its amount, at least 32 MB; unlimited: none); `cpus` is the weight, and the
    /// CFS quota is a `cpus` limit when one is given (unlimited: none), else the `cpus` themselves
    /// when `hardCPULimit` is on.
    public static func fromResources(
        memoryMegabytes: Double?, cpus: Double?, hardCPULimit: Bool, memoryLimit: Limit? = nil, cpuLimit: Limit? = nil
    ) -> CgroupLimits {
        func bytes(_ megabytes: Double?) -> UInt64? {
            guard let megabytes, megabytes.isFinite, megabytes > 0 else { return nil }
            return max(UInt64(megabytes) * 1024 * 1024, minimumMemoryBytes)
        }
        func positive(_ value: Double?) -> Double? { value.flatMap { $0.isFinite && $0 > 0 ? $0 : nil } }
        let memory: UInt64? =
            switch memoryLimit {
            case .amount(let megabytes): bytes(megabytes)
            case .unlimited: nil
            case nil: bytes(memoryMegabytes)
            }
        let cpus = positive(cpus)
        let quota: Double? =
            switch cpuLimit {
            case .amount(let limit): positive(limit)
            case .unlimited: nil
            case nil: hardCPULimit ? cpus : nil
            }
        // Burstable: a mem limit above the request (or none at all) makes the request a soft limit.
        var soft: UInt64?
        if memoryLimit != nil, let request = bytes(memoryMegabytes), memory.map({ $0 > request }) ?? true {
            soft = request
        }
        return CgroupLimits(memoryBytes: memory, memorySoftBytes: soft, cpus: cpus, cpuQuota: quota)
    }

    /// For a task that may burst (``memorySoftBytes``), the `oom_score_adj` Mesos gives it, so that
    /// when the whole machine runs short of memory the kernel stops bursting tasks first, the more
    /// so the less they asked for: 1000 − 1000 × `mem` / the machine's memory. Nil otherwise.
    public func oomScoreAdjustment(totalMemoryBytes: UInt64 = CgroupLimits.machineMemoryBytes) -> Int? {
        guard let soft = memorySoftBytes, totalMemoryBytes > 0 else { return nil }
        let share = Double(soft) / Double(totalMemoryBytes)
        return min(max(1000 - Int(1000 * share), 0), 1000)
    }

    /// The machine's memory (physical pages × page size), for ``oomScoreAdjustment(totalMemoryBytes:)``.
    public static let machineMemoryBytes: UInt64 =
        UInt64(max(sysconf(Int32(_SC_PHYS_PAGES)), 0)) * UInt64(max(sysconf(Int32(_SC_PAGESIZE)), 0))

    /// v1 `cpu.shares`: 1024 per cpu, at least 2 (Mesos truncates).
    var cpuShares: UInt64? { cpus.map { max(UInt64(1024 * $0), 2) } }
    /// v2 `cpu.weight`: 100 per cpu, within 1...10000.
    var cpuWeight: UInt64? { cpus.map { min(max(UInt64(100 * $0), 1), 10000) } }
    /// CFS quota per 100 ms period, at least 1 ms.
    var cfsQuotaMicroseconds: Int64? {
        guard let cpuQuota else { return nil }
        return max(Int64(100_000 * cpuQuota), 1000)
    }
    static let cfsPeriodMicroseconds: Int64 = 100_000
}
