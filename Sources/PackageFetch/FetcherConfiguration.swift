/// How a ``PackageFetcher`` fetches: cache location and size, timeouts, retries, limits.
/// Built once from the executor's configuration; nothing here reads the environment by itself.
public struct FetcherConfiguration: Sendable {
    /// The shared cache directory; nil disables the cache (every fetch goes straight to the sandbox).
    /// With ``CacheLink/hardLinks`` it must be on the same filesystem as the sandboxes for cache hits
    /// to be hard links rather than copies.
    public var cacheDirectory: String?
    /// Cache size cap; least recently used entries no running executor uses are evicted above it.
    public var cacheMaxBytes: Int64
    /// TCP connect timeout for http(s).
    public var connectTimeout: Duration
    /// A download that delivers no byte for this long is abandoned (and resumed or retried).
    public var stallTimeout: Duration
    /// Attempts per URI, including the first; a dropped download resumes with Range when it can.
    public var attempts: Int
    /// Delay before the second attempt; doubled for each later one.
    public var retryBackoff: Duration
    /// Redirects followed per request.
    public var maxRedirects: Int
    /// Archive bomb limits.
    public var limits: ExtractionLimits
    /// Free space every download leaves on the filesystem it writes to (the cache's or the sandbox's):
    /// by default the larger of 1 GiB and 5 % of it (the executor sets bytes from
    /// `SPARK_MESOS_EXECUTOR_FETCH_MIN_FREE_BYTES`).
    public var freeSpaceReserve: FreeSpaceReserve
    /// Where `bin/hadoop` lives, for hdfs:// and s3*:// URIs (HADOOP_HOME).
    public var hadoopHome: String?
    /// The PATH searched for `hadoop` when `hadoopHome` is nil.
    public var searchPath: String?
    /// The environment `hadoop` runs with ("NAME=value").
    public var hadoopEnvironment: [String]
    /// How often a running download logs its progress.
    public var progressInterval: Duration
    /// Bytes queued between the download and the extraction before the download waits.
    public var bufferBytes: Int

    public init(
        cacheDirectory: String? = "/var/cache/spark-mesos-executor",
        cacheMaxBytes: Int64 = 8 << 30,
        connectTimeout: Duration = .seconds(10),
        stallTimeout: Duration = .seconds(60),
        attempts: Int = 4,
        retryBackoff: Duration = .milliseconds(500),
        maxRedirects: Int = 10,
        limits: ExtractionLimits = ExtractionLimits(),
        freeSpaceReserve: FreeSpaceReserve = .standard,
        hadoopHome: String? = nil,
        searchPath: String? = nil,
        hadoopEnvironment: [String] = [],
        progressInterval: Duration = .seconds(5),
        bufferBytes: Int = 8 << 20
    ) {
        self.cacheDirectory = cacheDirectory
        self.cacheMaxBytes = cacheMaxBytes
        self.connectTimeout = connectTimeout
        self.stallTimeout = stallTimeout
        self.attempts = max(1, attempts)
        self.retryBackoff = retryBackoff
        self.maxRedirects = maxRedirects
        self.limits = limits
        self.freeSpaceReserve = freeSpaceReserve
        self.hadoopHome = hadoopHome
        self.searchPath = searchPath
        self.hadoopEnvironment = hadoopEnvironment
        self.progressInterval = progressInterval
        self.bufferBytes = bufferBytes
    }
}

extension Duration {
    var seconds: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
