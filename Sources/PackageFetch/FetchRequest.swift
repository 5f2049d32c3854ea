public import FetchPolicy
public import ProcessSupervision

/// What an executor needs fetched before its tasks can run.
public struct FetchRequest: Sendable, Hashable {
    /// The package; its package root becomes SPARK_HOME.
    public var package: FetchURI?
    /// Further URIs (a command task's `CommandInfo.uris`, say).
    public var additional: [FetchURI]
    /// An installed Spark to use when there is no package.
    public var executorHome: String?
    /// How an archive from the cache is put into the sandbox.
    public var cacheLink: CacheLink
    /// The most the fetched files may take in the sandbox, in bytes: the executor's `disk` resource
    /// (MB in `ExecutorInfo.resources`) when it has one. Files hard-linked from the cache count too
    /// (they are the sandbox's files, as Mesos's disk usage counts them); a directory linked to the
    /// cache by a symbolic link does not. A download stops as soon as it would go over. Nil: no cap.
    public var diskLimitBytes: Int64?
    /// What ``diskLimitBytes`` is, as the message of a fetch stopped by it names it.
    public var diskLimitName: String
    /// Bytes already in the sandbox that count against ``diskLimitBytes`` (an earlier fetch's files).
    public var diskUsedBytes: Int64
    /// Whose permissions the fetch has: a task of another user's URIs are fetched as Mesos's
    /// fetcher fetches them, as that user — a local file is opened with the user's permissions,
    /// hadoop runs as the user, and the user's cache entries are its own. Nil: the executor's.
    public var user: UserIdentity?

    public init(
        package: FetchURI? = nil, additional: [FetchURI] = [], executorHome: String? = nil,
        cacheLink: CacheLink = .symlink, diskLimitBytes: Int64? = nil,
        diskLimitName: String = "the executor's disk resource", diskUsedBytes: Int64 = 0, user: UserIdentity? = nil
    ) {
        self.package = package
        self.additional = additional
        self.executorHome = executorHome
        self.cacheLink = cacheLink
        self.diskLimitBytes = diskLimitBytes
        self.diskLimitName = diskLimitName
        self.diskUsedBytes = diskUsedBytes
        self.user = user
    }
}

/// How an extracted archive from the shared cache is put into a sandbox
/// (`spark.mesos.executor.cache.link`). The cached tree is read-only either way, directories and files.
public enum CacheLink: String, Sendable, Hashable, CaseIterable {
    /// One symbolic link per top-level directory of the archive, to that directory in the cache: a
    /// hit costs the same whatever the package's size and takes no room in the sandbox; tasks cannot
    /// add files to their package (top-level files, and directories that would have to be merged
    /// with one already in the sandbox, are hard-linked as with ``hardLinks``).
    case symlink
    /// A private tree: directories of the sandbox's own, files hard-linked to the cache's read-only
    /// files. Tasks may add and remove files in their package; a hit costs a link per file.
    case hardLinks = "hardlinks"
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
    /// Bytes of the file, or of the extracted tree's files, in the sandbox (those behind a symbolic
    /// link to the cache do not count).
    public var bytes: Int64
    /// The sha256 of the payload, when known (always after a download; from the cache on a hit).
    public var sha256: String?
    public var duration: Duration
}
