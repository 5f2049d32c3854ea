public import MesosProto

/// What a runner measured of a finished task: the resources it used and a limit it hit. The
/// terminal status update carries it (``labels``, ``limitation``).
public struct TaskMeasurements: Sendable, Equatable {
    /// The largest memory use seen, in bytes.
    public var peakMemoryBytes: Int64?
    public var userCPUSeconds: Double?
    public var systemCPUSeconds: Double?
    /// Where the figures come from: `cgroup` or `rusage` (the kernel's accounting of the process
    /// and the descendants it waited for).
    public var source: String?
    /// A resource whose limit ended the task (`mem` for an OOM kill) ...
    public var limitedResourceName: String?
    /// ... and the amount used, in Mesos's unit (MB for `mem`).
    public var limitedResourceAmount: Double?
    /// The memory limit the task ran under, in bytes.
    public var memoryLimitBytes: UInt64?
    /// Periods in which its CFS quota held the task back (hard CPU limits only).
    public var cpuThrottledPeriods: Int64?

    public init() {}

    /// The label keys, documented in the README ("Isolation").
    public enum LabelKey {
        public static let peakMemoryBytes = "usage.peak_memory_bytes"
        public static let userCPUSeconds = "usage.cpu_user_seconds"
        public static let systemCPUSeconds = "usage.cpu_system_seconds"
        public static let source = "usage.source"
        public static let memoryLimitBytes = "limit.memory_bytes"
        public static let cpuThrottledPeriods = "usage.cpu_throttled_periods"
    }

    /// `TaskStatus.labels` for these measurements (empty when nothing was measured).
    public var labels: [(key: String, value: String)] {
        var labels: [(key: String, value: String)] = []
        if let peakMemoryBytes { labels.append((LabelKey.peakMemoryBytes, "\(peakMemoryBytes)")) }
        if let userCPUSeconds { labels.append((LabelKey.userCPUSeconds, Self.seconds(userCPUSeconds))) }
        if let systemCPUSeconds { labels.append((LabelKey.systemCPUSeconds, Self.seconds(systemCPUSeconds))) }
        if let cpuThrottledPeriods { labels.append((LabelKey.cpuThrottledPeriods, "\(cpuThrottledPeriods)")) }
        if let memoryLimitBytes { labels.append((LabelKey.memoryLimitBytes, "\(memoryLimitBytes)")) }
        if let source, !labels.isEmpty { labels.append((LabelKey.source, source)) }
        return labels
    }

    /// `TaskStatus.limitation` when a limit ended the task.
    public var limitation: Mesos_V1_TaskResourceLimitation? {
        guard let limitedResourceName else { return nil }
        var resource = Mesos_V1_Resource()
        resource.name = limitedResourceName
        resource.type = .scalar
        resource.scalar.value = limitedResourceAmount ?? 0
        var limitation = Mesos_V1_TaskResourceLimitation()
        limitation.resources = [resource]
        return limitation
    }

    /// Microsecond precision, no exponent: "0.012345".
    static func seconds(_ value: Double) -> String {
        let micros = Int64((value * 1_000_000).rounded())
        let fraction = String(micros % 1_000_000)
        return "\(micros / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
    }
}
