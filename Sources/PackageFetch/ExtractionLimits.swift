/// Caps that stop an archive bomb before it fills the disk.
public struct ExtractionLimits: Sendable, Hashable {
    /// Total bytes all entries may write.
    public var maxBytes: Int64
    /// Number of entries an archive may hold.
    public var maxEntries: Int

    /// 16 GiB and 200,000 entries: forty times a Spark distribution.
    public init(maxBytes: Int64 = 16 << 30, maxEntries: Int = 200_000) {
        self.maxBytes = maxBytes
        self.maxEntries = maxEntries
    }
}
