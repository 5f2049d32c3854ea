public import FetchPolicy
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The agent-wide package cache, shared by every executor process and kept across agent restarts.
///
/// Layout under ``directory``:
/// - `objects/<sha256>.<variant>/`: `data/` (the extracted tree, or `blob`), `manifest`, `meta`, `inuse`;
/// - `uris/<key>`: which object a URI without `#sha256=` resolved to (the URI is never re-checked:
///   publish a new version under a new URI, as with Mesos);
/// - `locks/`: one flock per URI or digest, so concurrent executors download once;
/// - `tmp/`: staging directories, published by an atomic rename after verification.
///
/// Executors hold a shared flock on `inuse` of every entry they use; eviction takes the exclusive
/// lock without waiting, so entries in use are never evicted, and a dead executor holds nothing.
public struct FetchCache: Sendable {
    /// The cache's root directory.
    public let directory: String
    /// The size cap that ``prune(maxBytes:)`` and inserts enforce.
    public let maxBytes: Int64

    /// A cache in `directory`, created on first use.
    public init(directory: String, maxBytes: Int64 = 8 << 30) {
        self.directory = directory
        self.maxBytes = maxBytes
    }

    var objects: String { directory + "/objects" }

    /// Lists the published entries, least recently used first.
    public func list() throws(FetchError) -> [CacheEntry] {
        try prepare()
        var entries: [CacheEntry] = []
        for name in directoryNames(objects) {
            let path = objects + "/" + name
            guard let text = readSmallFile(path + "/meta"), let meta = EntryMetadata(text) else { continue }
            var info = stat()
            let lastUsed = stat(path + "/inuse", &info) == 0 ? Int64(info.st_mtim.tv_sec) : 0
            var inUse = true
            if let probe = try? FileLock(path: path + "/inuse"), probe.tryLock(shared: false) {
                probe.unlock()
                inUse = false
            }
            entries.append(
                CacheEntry(
                    name: name, uri: meta.uri, sha256: meta.sha256, bytes: meta.bytes, lastUsed: lastUsed, inUse: inUse,
                    kind: meta.kind))
        }
        return entries.sorted { ($0.lastUsed, $0.name) < ($1.lastUsed, $1.name) }
    }

    /// Evicts least recently used entries that no executor uses until the cache fits `maxBytes`
    /// (default: the configured cap), and removes staging left by dead processes and dangling index files.
    @discardableResult
    public func prune(maxBytes: Int64? = nil) throws(FetchError) -> PruneReport {
        var report = removeLeftovers()
        let entries = try list()
        var total = entries.reduce(0) { $0 + $1.bytes }
        let cap = maxBytes ?? self.maxBytes
        for entry in entries where total > cap {
            if evict(entry.name) {
                report.removedEntries.append(entry.name)
                report.freedBytes += entry.bytes
                total -= entry.bytes
            } else {
                report.skippedInUse.append(entry.name)
            }
        }
        return report
    }

    /// Removes every entry no executor uses.
    @discardableResult
    public func clear() throws(FetchError) -> PruneReport {
        try prune(maxBytes: -1)
    }

    // MARK: Used by the fetcher

    func prepare() throws(FetchError) {
        for sub in ["objects", "uris", "locks", "tmp"] {
            if let failure = makeDirectories(directory + "/" + sub) { throw .cache(directory, failure.description) }
        }
    }

    /// A published entry for `key`, leased (shared-locked) for the caller; nil on a miss.
    func lookup(_ key: CacheKey) -> CacheLease? {
        guard
            let name = key.objectName
                ?? readSmallFile(directory + "/uris/" + key.uriIndex).map({ $0.trimmingWhitespace() }),
            !name.isEmpty, !name.contains("/")
        else { return nil }
        let path = objects + "/" + name
        guard access(path + "/meta", F_OK) == 0, let lock = try? FileLock(path: path + "/inuse"),
            lock.tryLock(shared: true),
            // An eviction renames the entry away while holding the exclusive lock: check it is still here.
            access(path + "/meta", F_OK) == 0,
            let text = readSmallFile(path + "/meta"), let meta = EntryMetadata(text)
        else { return nil }
        lock.touch()
        return CacheLease(name: name, path: path, metadata: meta, lock: lock)
    }

    func fetchLock(_ key: CacheKey) throws(FetchError) -> FileLock {
        do {
            return try FileLock(path: directory + "/locks/" + key.lockName)
        } catch {
            throw .cache(directory, error.description)
        }
    }

    /// A fresh staging directory on the cache's filesystem.
    func makeStaging() throws(FetchError) -> String {
        let path = directory + "/tmp/\(getpid())-\(String(UInt64.random(in: 0...UInt64.max), radix: 16))"
        guard mkdir(path, 0o755) == 0 else {
            throw .cache(directory, FileSystemFailure("cannot create", path).description)
        }
        return path
    }

    /// Publishes `staging` (data/ plus manifest) under its content digest and records the URI index.
    /// When the same content was published meanwhile, the existing entry wins and staging is dropped.
    func publish(staging: String, key: CacheKey, metadata: EntryMetadata) throws(FetchError) -> CacheLease {
        let name = metadata.sha256 + "." + key.variant
        guard writeSmallFile(staging + "/meta", metadata.encoded()), let inuse = try? FileLock(path: staging + "/inuse")
        else { throw .cache(directory, FileSystemFailure("cannot write metadata in", staging).description) }
        _ = inuse
        let target = objects + "/" + name
        if rename(staging, target) != 0 {
            guard errno == EEXIST || errno == ENOTEMPTY else {
                throw .cache(directory, FileSystemFailure("cannot publish", target).description)
            }
            removeTree(staging)
        }
        let indexTemp = directory + "/tmp/index-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        if writeSmallFile(indexTemp, name + "\n") { rename(indexTemp, directory + "/uris/" + key.uriIndex) }
        guard let lease = lookup(CacheKey(objectName: name, variant: key.variant)) else {
            throw .cache(directory, "entry \(name) vanished right after it was published")
        }
        return lease
    }

    /// Evicts one entry unless an executor holds it. The entry is first renamed away, so no reader
    /// ever sees it half-removed.
    func evict(_ name: String) -> Bool {
        let path = objects + "/" + name
        guard let lock = try? FileLock(path: path + "/inuse"), lock.tryLock(shared: false) else { return false }
        let doomed = directory + "/tmp/evict-\(name)-\(UInt32.random(in: 0...UInt32.max))"
        guard rename(path, doomed) == 0 else { return false }
        lock.unlock()
        removeTree(doomed)
        return true
    }

    private func removeLeftovers() -> PruneReport {
        var report = PruneReport()
        for name in directoryNames(directory + "/tmp") {
            // Staging is named "<pid>-<random>": remove it once its process is gone.
            let owner = name.split(separator: "-").first.flatMap { Int32($0) }
            if let owner, owner > 0, kill(owner, 0) == 0 || errno == EPERM { continue }
            removeTree(directory + "/tmp/" + name)
            report.removedLeftovers += 1
        }
        for name in directoryNames(directory + "/uris") {
            let target = readSmallFile(directory + "/uris/" + name)?.trimmingWhitespace() ?? ""
            if target.isEmpty || access(objects + "/" + target, F_OK) != 0 {
                unlink(directory + "/uris/" + name)
                report.removedLeftovers += 1
            }
        }
        return report
    }
}

/// Where a URI lives in the cache.
struct CacheKey: Sendable {
    /// The index file for the URI (sha256 of its location and variant).
    var uriIndex: String
    /// "tree", "file" or "exec" (plus a name hash where the name shapes the result).
    var variant: String
    /// Known up front when the URI carries `#sha256=`.
    var objectName: String?

    /// `user`: a fetch with another user's permissions (``FetchRequest/user``) has entries of its
    /// own, as Mesos's fetcher cache has a directory per user: what was fetched with the executor's
    /// permissions (a local file only it may read) is no hit for the user, and the other way round.
    init(uri: FetchURI, user: UserIdentity? = nil) {
        switch uri.payloadPlan {
        case .file: variant = uri.executable ? "exec" : "file"
        case .archive: variant = "tree"
        case .gunzip, .sniff: variant = "tree-" + SHA256.hex(of: uri.effectiveName).prefix(12)
        }
        if let user { variant += "-uid\(user.uid)" }
        // file:///a and /a are one file.
        let location = uri.scheme == .file ? "file://" + uri.localPath : uri.location
        uriIndex = SHA256.hex(of: location + "\n" + variant)
        objectName = uri.sha256.map { $0 + "." + variant }
    }

    init(objectName: String, variant: String) {
        self.objectName = objectName
        self.variant = variant
        uriIndex = ""
    }

    var lockName: String { (objectName ?? uriIndex) + ".lock" }
}

/// A cache entry an executor uses; the shared lock keeps it from eviction until released.
struct CacheLease: Sendable {
    let name: String
    let path: String
    let metadata: EntryMetadata
    let lock: FileLock
}

func directoryNames(_ path: String) -> [String] {
    directoryEntries(atPath: path)?.map(\.name) ?? []
}

func readSmallFile(_ path: String) -> String? {
    readBytes(path).map { String(decoding: $0, as: UTF8.self) }
}

func readBytes(_ path: String) -> [UInt8]? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fd, &buffer, buffer.count)
        if count <= 0 { break }
        bytes += buffer[0..<count]
    }
    return bytes
}

func writeSmallFile(_ path: String, _ text: String) -> Bool {
    writeBytes(path, Array(text.utf8))
}

func writeBytes(_ path: String, _ bytes: [UInt8]) -> Bool {
    let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    return bytes.withUnsafeBytes { writeAll(fd, $0) }
}
