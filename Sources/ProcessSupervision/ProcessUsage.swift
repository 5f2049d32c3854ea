/// What the kernel accounted to a process: CPU time and peak resident memory. From `wait4`-style
/// accounting it covers the process and the descendants it waited for; from a cgroup, everything
/// that ran in it.
public struct ProcessUsage: Sendable, Equatable {
    public var userCPUMicroseconds: Int64
    public var systemCPUMicroseconds: Int64
    /// The largest resident set seen, in bytes.
    public var peakMemoryBytes: Int64

    public init(userCPUMicroseconds: Int64 = 0, systemCPUMicroseconds: Int64 = 0, peakMemoryBytes: Int64 = 0) {
        self.userCPUMicroseconds = userCPUMicroseconds
        self.systemCPUMicroseconds = systemCPUMicroseconds
        self.peakMemoryBytes = peakMemoryBytes
    }
}
