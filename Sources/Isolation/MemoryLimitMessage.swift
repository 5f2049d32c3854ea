/// The message of a task (or worker) the kernel's OOM killer stopped inside its cgroup.
public enum MemoryLimitMessage {
    /// "memory limit 256 MiB reached (peak 256 MiB): killed by the kernel's OOM killer"
    public static func text(limit: UInt64, peak: Int64) -> String {
        "memory limit \(mebibytes(Double(limit))) reached (peak \(mebibytes(Double(peak)))): killed by the kernel's OOM killer"
    }

    /// Whole MiB where exact, else one decimal.
    static func mebibytes(_ bytes: Double) -> String {
        let value = bytes / 1_048_576
        if value == value.rounded() { return "\(Int64(value)) MiB" }
        return "\(Double(Int64(value * 10)) / 10) MiB"
    }
}
