public import Isolation
public import MesosProto

extension CgroupLimits {
    /// Limits for a task: its resources, and its own `limits` (`TaskInfo.limits`) above them, as
    /// Mesos's cgroups isolators apply them. Throws for limits the Mesos master would not have let
    /// through: another resource than `cpus` and `mem`, or an amount that is not a number at least
    /// the task's request (infinity: no limit at all).
    public init(task: Mesos_V1_TaskInfo, hardCPULimit: Bool) throws(SettingsError) {
        let requests = (mem: Self.scalar("mem", in: task.resources), cpus: Self.scalar("cpus", in: task.resources))
        func limit(_ name: String, request: Double?) throws(SettingsError) -> Limit? {
            guard let scalar = task.limits[name] else { return nil }
            let value = scalar.value
            if value == .infinity { return .unlimited }
            let request = request ?? 0
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
            memoryMegabytes: requests.mem, cpus: requests.cpus, hardCPULimit: hardCPULimit,
            memoryLimit: try limit("mem", request: requests.mem), cpuLimit: try limit("cpus", request: requests.cpus))
    }

    private static func scalar(_ name: String, in resources: [Mesos_V1_Resource]) -> Double? {
        let values = resources.filter { $0.name == name && $0.hasScalar }.map(\.scalar.value)
        return values.isEmpty ? nil : values.reduce(0, +)
    }
}
