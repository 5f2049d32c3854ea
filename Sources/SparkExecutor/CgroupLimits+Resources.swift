public import Isolation
public import MesosProto

extension CgroupLimits {
    /// Limits from a task's (or executor's) Mesos resources: `mem` (MB) and `cpus`. A resource that
    /// is not given sets no limit.
    public init(_ resources: [Mesos_V1_Resource], hardCPULimit: Bool) {
        func scalar(_ name: String) -> Double? {
            let values = resources.filter { $0.name == name && $0.hasScalar }.map(\.scalar.value)
            return values.isEmpty ? nil : values.reduce(0, +)
        }
        self = CgroupLimits.fromResources(
            memoryMegabytes: scalar("mem"), cpus: scalar("cpus"), hardCPULimit: hardCPULimit)
    }
}
