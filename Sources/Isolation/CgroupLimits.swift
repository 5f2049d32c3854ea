/// Limits for one cgroup, in Mesos's terms. A nil field sets no limit (never a made-up one).
public struct CgroupLimits: Sendable, Equatable {
    /// The hard memory limit in bytes (`memory.limit_in_bytes` / `memory.max`).
    public var memoryBytes: UInt64?
    /// CPU weight from this many cpus (`cpu.shares` = 1024 per cpu / `cpu.weight` = 100 per cpu).
    public var cpus: Double?
    /// Also cap CPU time at `cpus` per 100 ms period (CFS quota), as agents with `--cgroups_enable_cfs` do.
    public var hardCPULimit: Bool

    public init(memoryBytes: UInt64? = nil, cpus: Double? = nil, hardCPULimit: Bool = false) {
        self.memoryBytes = memoryBytes
        self.cpus = cpus
        self.hardCPULimit = hardCPULimit
    }

    public static let none = CgroupLimits()

    /// Mesos's smallest memory limit: below it a task cannot even start.
    public static let minimumMemoryBytes: UInt64 = 32 * 1024 * 1024

    /// From Mesos resources: `mem` in MB (Mesos MB are MiB, truncated to whole MB, at least 32 MB)
    /// and `cpus`.
    public static func fromResources(memoryMegabytes: Double?, cpus: Double?, hardCPULimit: Bool) -> CgroupLimits {
        let memory = memoryMegabytes.flatMap { megabytes -> UInt64? in
            guard megabytes.isFinite, megabytes > 0 else { return nil }
            return max(UInt64(megabytes) * 1024 * 1024, minimumMemoryBytes)
        }
        let cpus = cpus.flatMap { $0.isFinite && $0 > 0 ? $0 : nil }
        return CgroupLimits(memoryBytes: memory, cpus: cpus, hardCPULimit: hardCPULimit && cpus != nil)
    }

    /// v1 `cpu.shares`: 1024 per cpu, at least 2 (Mesos truncates).
    var cpuShares: UInt64? { cpus.map { max(UInt64(1024 * $0), 2) } }
    /// v2 `cpu.weight`: 100 per cpu, within 1...10000.
    var cpuWeight: UInt64? { cpus.map { min(max(UInt64(100 * $0), 1), 10000) } }
    /// CFS quota per 100 ms period, at least 1 ms.
    var cfsQuotaMicroseconds: Int64? {
        guard hardCPULimit, let cpus else { return nil }
        return max(Int64(100_000 * cpus), 1000)
    }
    static let cfsPeriodMicroseconds: Int64 = 100_000
}
