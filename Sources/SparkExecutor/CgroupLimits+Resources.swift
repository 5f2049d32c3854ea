public import Isolation
public import MesosProto

extension CgroupLimits {
    /// Limits from a task's (or executor's) Mesos resources: `mem` (MB) and `cpus`. A resource that
    /// is not given sets no limit.
    public init(_ resources: [Mesos_V1_Resource], hardCPULimit: Bool) {
        self = CgroupLimits.fromResources(
            memoryMegabytes: Self.scalar("mem", in: resources), cpus: Self.scalar("cpus", in: resources),
            hardCPULimit: hardCPULimit)
    }

    /// Limits for a task: its resources, and its own `limits` (`TaskInfo.limits`) above them, as
    /// Mesos's cgroups isolators apply them. Throws for limits the Mesos master would not have let
    /// through: another resource than `cpus` and `mem`, or an amount that is not a number at least
    /// the task's request (infinity: no limit at all).
    public init(task: Mesos_V1_TaskInfo, hardCPULimit: Bool) throws(SettingsError) {
        func limit(_ name: String) throws(SettingsError) -> Limit? {
            guard let scalar = task.limits[name] else { return nil }
            let value = scalar.value
            if value == .infinity { return .unlimited }
            let request = Self.scalar(name, in: task.resources) ?? 0
            guard value.isFinite, value > 0, value >= request else {
                throw SettingsError(
                    key: "TaskInfo.limits[\(name)]", value: "\(value)",
                    expected: "a positive amount at least the task's \(name) (\(request)), or infinity")
            }
            return .amount(value)
        }
        if let other = task.limits.keys.sorted().first(where: { $0 != "cpus" && $0 != "mem" }) {
            throw SettingsError(
                key: "TaskInfo.limits[\(other)]", value: "\(task.limits[other]?.value ?? 0)",
                expected: "a limit of cpus or mem only")
        }
        self = CgroupLimits.fromResources(
            memoryMegabytes: Self.scalar("mem", in: task.resources), cpus: Self.scalar("cpus", in: task.resources),
            hardCPULimit: hardCPULimit, memoryLimit: try limit("mem"), cpuLimit: try limit("cpus"))
    }

    private static func scalar(_ name: String, in resources: [Mesos_V1_Resource]) -> Double? {
        let values = resources.filter { $0.name == name && $0.hasScalar }.map(\.scalar.value)
        return values.isEmpty ? nil : values.reduce(0, +)
    }
}
