public import Logging
public import FetchPolicy
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Fetches an executor's package and URIs into its sandbox, through the shared ``FetchCache``.
///
/// A miss streams the download straight into libarchive (hashing on the way), verifies, makes the
/// extracted tree read-only and publishes it into the cache by an atomic rename, then links it into
/// the sandbox (``CacheLink``: a symbolic link per top-level directory, or a tree of hard links). A
/// hit only links. Concurrent fetchers of one URI, in this process or others, download it once.
///
/// ```swift
/// try await PackageFetcher.withFetcher(configuration: .init()) { fetcher in
///     let request = FetchRequest(package: try FetchURI("https://repo/spark.tgz"))
///     let package = try await fetcher.fetch(request, into: sandbox)
///     environment["SPARK_HOME"] = package.sparkHome
/// }
/// ```
public actor PackageFetcher {
    public nonisolated let configuration: FetcherConfiguration
    /// The shared cache, nil when disabled.
    public nonisolated let cache: FetchCache?
    nonisolated let logger: Logger
    /// Entries this executor uses: shared flocks held until ``shutdown()``.
    private var leases: [String: CacheLease] = [:]

    /// Prefer ``withFetcher(configuration:logger:_:)``; a fetcher made here must be ``shutdown()``.
    public init(
        configuration: FetcherConfiguration = FetcherConfiguration(),
        logger: Logger = Logger(label: "spark-mesos-executor.fetch")
    ) {
        self.configuration = configuration
        self.cache = configuration.cacheDirectory.map {
            FetchCache(directory: canonicalPath($0) ?? $0, maxBytes: configuration.cacheMaxBytes)
        }
        self.logger = logger
    }

    /// Runs `body` with a fetcher and shuts it down afterwards.
    public static func withFetcher<Result: Sendable>(
        configuration: FetcherConfiguration, logger: Logger = Logger(label: "spark-mesos-executor.fetch"),
        _ body: (PackageFetcher) async throws -> Result
    ) async throws -> Result {
        let fetcher = PackageFetcher(configuration: configuration, logger: logger)
        do {
            let result = try await body(fetcher)
            await fetcher.shutdown()
            return result
        } catch {
            await fetcher.shutdown()
            throw error
        }
    }

    /// Releases the cache entries this fetcher holds.
    public func shutdown() async {
        leases.removeAll()
    }

    /// Fetches everything `request` names into `sandbox` (an existing directory).
    public nonisolated func fetch(_ request: FetchRequest, into sandbox: String) async throws(FetchError)
        -> FetchedPackage
    {
        let clock = ContinuousClock()
        let started = clock.now
        guard let sandbox = canonicalPath(sandbox), isDirectory(sandbox) else {
            throw .filesystem(sandbox, "the sandbox directory does not exist")
        }
        var sparkHome: String?
        if request.package == nil {
            if let home = request.executorHome {
                guard isDirectory(home) else { throw .noPackage(home: home) }
                sparkHome = home
            } else if request.additional.isEmpty {
                throw .noPackage(home: nil)
            }
        }
        var items: [FetchedItem] = []
        var disk = DiskAllowance(
            cap: request.diskLimitBytes, name: request.diskLimitName, used: max(0, request.diskUsedBytes))
        if let package = request.package {
            let item = try await fetch(package, into: sandbox, link: request.cacheLink, disk: disk, as: request.user)
            sparkHome = item.extracted ? item.path : sandbox
            disk.used += item.bytes
            items.append(item)
        }
        for uri in request.additional {
            let item = try await fetch(uri, into: sandbox, link: request.cacheLink, disk: disk, as: request.user)
            disk.used += item.bytes
            items.append(item)
        }
        return FetchedPackage(sparkHome: sparkHome, items: items, duration: clock.now - started)
    }

    /// Fetches one URI, with `user`'s permissions when given (``FetchRequest/user``).
    nonisolated func fetch(
        _ uri: FetchURI, into sandbox: String, link: CacheLink, disk: DiskAllowance, as user: UserIdentity? = nil
    ) async throws(FetchError) -> FetchedItem {
        let clock = ContinuousClock()
        let started = clock.now
        var item: FetchedItem
        if let cache, uri.cache ?? true {
            item = try await fetchCached(uri, cache: cache, sandbox: sandbox, link: link, disk: disk, as: user)
        } else {
            item = try await fetchDirect(uri, sandbox: sandbox, disk: disk, as: user)
        }
        item.duration = clock.now - started
        let source = item.cacheHit ? "cache" : "\(item.bytesFetched) bytes fetched"
        logger.debug("fetched \(uri) to \(item.path) (\(source)) in \(item.duration)")
        return item
    }

    private nonisolated func fetchDirect(_ uri: FetchURI, sandbox: String, disk: DiskAllowance, as user: UserIdentity?)
        async throws(FetchError) -> FetchedItem
    {
        let staging = sandbox + "/.fetch-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        guard mkdir(staging, 0o700) == 0 else {
            throw .filesystem(uri.value, FileSystemFailure("cannot create", staging).description)
        }
        defer { removeTree(staging) }
        let budget = disk.budget(reserve: configuration.freeSpaceReserve, place: "the sandbox \(sandbox)")
        let downloaded = try await download(
            uri, into: staging + "/data", scratch: staging, budget: budget, as: user)
        return try install(
            uri, data: staging + "/data", downloaded: downloaded, manifest: nil, sandbox: sandbox, hit: false,
            link: .hardLinks, disk: disk)
    }

    private nonisolated func fetchCached(
        _ uri: FetchURI, cache: FetchCache, sandbox: String, link: CacheLink, disk: DiskAllowance,
        as user: UserIdentity?
    ) async throws(FetchError) -> FetchedItem {
        try cache.prepare()
        let key = CacheKey(uri: uri, user: user)
        if let lease = cache.lookup(key) {
            return try await installHit(uri, lease: lease, sandbox: sandbox, link: link, disk: disk)
        }
        let lock = try cache.fetchLock(key)
        guard await lock.lockExclusive() else {
            throw .cache(cache.directory, "cannot lock \(lock.path): \(errnoText())")
        }
        defer { lock.unlock() }
        // Whoever held the lock may just have published it.
        if let lease = cache.lookup(key) {
            return try await installHit(uri, lease: lease, sandbox: sandbox, link: link, disk: disk)
        }
        let staging = try cache.makeStaging()
        defer { removeTree(staging) }
        let scratch = try cache.makeStaging()
        defer { removeTree(scratch) }
        let budget = disk.budget(
            reserve: configuration.freeSpaceReserve, place: "the fetch cache \(cache.directory)")
        let downloaded = try await download(
            uri, into: staging + "/data", scratch: scratch, budget: budget, as: user)
        let manifest = try scanned(uri, staging + "/data")
        manifest.makeReadOnly(root: staging + "/data")
        guard writeBytes(staging + "/manifest", manifest.encoded()) else {
            throw .cache(cache.directory, FileSystemFailure("cannot write", staging + "/manifest").description)
        }
        let metadata = EntryMetadata(
            uri: uri.value, sha256: downloaded.sha256, bytes: manifest.bytes,
            kind: downloaded.extracted ? "tree" : "file",
            name: downloaded.extracted ? manifest.singleTopDirectory ?? "" : uri.effectiveName)
        let lease = try cache.publish(staging: staging, key: key, metadata: metadata)
        await retain(lease)
        do {
            let report = try cache.prune()
            if !report.removedEntries.isEmpty {
                logger.info(
                    "fetch cache over \(cache.maxBytes) bytes: evicted \(report.removedEntries.joined(separator: ", "))"
                )
            }
        } catch {
            logger.warning("\(error)")
        }
        var item = try install(
            uri, data: lease.path + "/data", downloaded: downloaded, manifest: manifest, sandbox: sandbox, hit: false,
            link: link, disk: disk)
        item.sha256 = downloaded.sha256
        return item
    }

    private nonisolated func installHit(
        _ uri: FetchURI, lease: CacheLease, sandbox: String, link: CacheLink, disk: DiskAllowance
    ) async throws(FetchError) -> FetchedItem {
        await retain(lease)
        let downloaded = Downloaded(sha256: lease.metadata.sha256, bytes: 0, extracted: lease.metadata.kind == "tree")
        if let item = linkedSingleDirectory(uri, lease: lease, downloaded: downloaded, sandbox: sandbox, link: link) {
            return item
        }
        let manifest = readBytes(lease.path + "/manifest").flatMap {
            TreeManifest.decode($0, totalBytes: lease.metadata.bytes)
        }
        guard let manifest else { throw .cache(lease.path, "the entry's manifest is unreadable; run the cache prune") }
        return try install(
            uri, data: lease.path + "/data", downloaded: downloaded, manifest: manifest, sandbox: sandbox, hit: true,
            link: link, disk: disk)
    }

    /// The common hit, in a handful of system calls whatever the package's size: an archive whose
    /// only top-level entry is a directory (the entry's metadata names it, so its manifest is not
    /// read), linked by a symbolic link to where nothing, or an earlier link, is in the way.
    private nonisolated func linkedSingleDirectory(
        _ uri: FetchURI, lease: CacheLease, downloaded: Downloaded, sandbox: String, link: CacheLink
    ) -> FetchedItem? {
        let name = lease.metadata.name
        guard link == .symlink, downloaded.extracted, !name.isEmpty, !name.contains("/"), uri.outputFile == nil else {
            return nil
        }
        let source = lease.path + "/data/" + name
        let target = sandbox + "/" + name
        var info = stat()
        guard lstat(source, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_mode & 0o222 == 0 else {
            return nil
        }
        // Only a link of an earlier fetch may be in the way; anything else takes the general path.
        guard TreeManifest.isFreeForLink(target), TreeManifest.symlink(source, at: target) == nil else { return nil }
        return FetchedItem(
            uri: uri.value, path: target, extracted: true, cacheHit: true, bytesFetched: 0, bytes: 0,
            sha256: downloaded.sha256, duration: .zero)
    }

    private func retain(_ lease: CacheLease) {
        leases[lease.name] = lease
    }

    /// Puts the verified tree or file from `data` into the sandbox.
    private nonisolated func install(
        _ uri: FetchURI, data: String, downloaded: Downloaded, manifest known: TreeManifest?, sandbox: String,
        hit: Bool, link: CacheLink, disk: DiskAllowance
    ) throws(FetchError) -> FetchedItem {
        let manifest: TreeManifest
        if let known { manifest = known } else { manifest = try scanned(uri, data) }
        var path: String
        var destination = sandbox
        if let output = uri.outputFile, let slash = output.lastIndex(of: "/") {
            // Made here, through no link, so that nothing below follows one out of the sandbox.
            if let failure = makeDirectories(sandbox)
                ?? TreeManifest.makeDirectoriesWithoutLinks(output[..<slash], under: sandbox)
            {
                throw .filesystem(uri.value, failure.description)
            }
            destination += "/" + output[..<slash]
        }
        // A hit writes no byte, but hard-linked files count in the sandbox (Mesos's disk usage counts
        // them); a symbolic link to a directory of the cache does not.
        var sandboxBytes = manifest.bytes
        var linked = Set<String>()
        if downloaded.extracted, link == .symlink {
            linked = manifest.linkableTopDirectories(in: destination)
            // An entry published before the cache made directories read-only.
            if !linked.isEmpty, manifest.hasWritableTopDirectory(root: data) { manifest.makeReadOnly(root: data) }
            if manifest.linksEveryDirectory(linked) { sandboxBytes = manifest.topLevelFileBytes(root: data) }
        }
        if let failure = disk.refusal(installing: sandboxBytes) { throw .diskLimit(uri.value, failure) }
        if downloaded.extracted {
            if let failure = manifest.materialize(from: data, into: destination, linking: linked) {
                throw .filesystem(uri.value, failure.description)
            }
            let top = manifest.topLevelItems
            path = top.count == 1 && top[0].kind != .symlink ? destination + "/" + top[0].path : destination
        } else {
            guard let file = manifest.items.first(where: { $0.kind == .file }) else {
                throw .filesystem(uri.value, "the fetched file is missing from \(data)")
            }
            path = sandbox + "/" + (uri.outputFile ?? uri.effectiveName)
            if let failure = makeDirectories(sandbox) { throw .filesystem(uri.value, failure.description) }
            if let failure = TreeManifest.link(data + "/" + file.path, path) {
                throw .filesystem(uri.value, failure.description)
            }
        }
        return FetchedItem(
            uri: uri.value, path: path, extracted: downloaded.extracted, cacheHit: hit,
            bytesFetched: hit ? 0 : downloaded.bytes, bytes: sandboxBytes, sha256: downloaded.sha256,
            duration: .zero)
    }

    private nonisolated func scanned(_ uri: FetchURI, _ data: String) throws(FetchError) -> TreeManifest {
        switch TreeManifest.scan(data) {
        case .success(let manifest): return manifest
        case .failure(let failure): throw .filesystem(uri.value, failure.description)
        }
    }
}

func canonicalPath(_ path: String) -> String? {
    guard let resolved = realpath(path, nil) else { return nil }
    defer { free(resolved) }
    return String(cString: resolved)
}

func isDirectory(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
}
