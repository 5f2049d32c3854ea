/// What an executor needs fetched before its tasks can run.
public struct FetchRequest: Sendable, Hashable {
    /// The package; its package root becomes SPARK_HOME.
    public var package: FetchURI?
    /// Further URIs (a command task's `CommandInfo.uris`, say).
    public var additional: [FetchURI]
    /// An installed Spark to use when there is no package.
    public var executorHome: String?
    /// The most the fetched files may take in the sandbox, in bytes: the executor's `disk` resource
    /// (MB in `ExecutorInfo.resources`) when it has one. Cache hits count too (their hard links are
    /// the sandbox's files); a download stops as soon as it would go over. Nil: no cap.
    public var diskLimitBytes: Int64?
    /// What ``diskLimitBytes`` is, as the message of a fetch stopped by it names it.
    public var diskLimitName: String
    /// Bytes already in the sandbox that count against ``diskLimitBytes`` (an earlier fetch's files).
    public var diskUsedBytes: Int64

    public init(
        package: FetchURI? = nil, additional: [FetchURI] = [], executorHome: String? = nil,
        diskLimitBytes: Int64? = nil, diskLimitName: String = "the executor's disk resource", diskUsedBytes: Int64 = 0
    ) {
        self.package = package
        self.additional = additional
        self.executorHome = executorHome
        self.diskLimitBytes = diskLimitBytes
        self.diskLimitName = diskLimitName
        self.diskUsedBytes = diskUsedBytes
    }
}

/// The result of a fetch: where things landed and what it cost.
public struct FetchedPackage: Sendable, Hashable {
    /// SPARK_HOME: the package root of ``FetchRequest/package``, else the executor home; nil when
    /// the request had neither (a command task with its own URIs).
    public var sparkHome: String?
    /// One item per fetched URI, in request order.
    public var items: [FetchedItem]
    /// Wall-clock time of the whole fetch.
    public var duration: Duration

    /// Bytes downloaded or read (zero when everything came from the cache).
    public var bytesFetched: Int64 { items.reduce(0) { $0 + $1.bytesFetched } }
    /// True when every item came from the cache.
    public var allCacheHits: Bool { items.allSatisfy(\.cacheHit) }
}

/// One URI's result.
public struct FetchedItem: Sendable, Hashable {
    public var uri: String
    /// For an extracted archive, its package root (its single top folder, or the directory it was
    /// extracted into); for a file, the file.
    public var path: String
    /// True for an extracted archive.
    public var extracted: Bool
    /// True when no byte was fetched for it.
    public var cacheHit: Bool
    /// Bytes downloaded or read for it.
    public var bytesFetched: Int64
    /// Bytes of the file, or of the extracted tree's files, in the sandbox.
    public var bytes: Int64
    /// The sha256 of the payload, when known (always after a download; from the cache on a hit).
    public var sha256: String?
    public var duration: Duration
}
