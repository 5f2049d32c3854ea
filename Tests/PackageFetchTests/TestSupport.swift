import Logging

@testable import PackageFetch

#if canImport(Glibc)
    import Glibc
#endif

/// Test settings: short timeouts and backoff so failure paths finish quickly.
func testConfiguration(cache: String?, attempts: Int = 3, stall: Duration = .seconds(20)) -> FetcherConfiguration {
    FetcherConfiguration(
        cacheDirectory: cache, connectTimeout: .seconds(2), stallTimeout: stall, attempts: attempts,
        retryBackoff: .milliseconds(10), bufferBytes: 1 << 20)
}

func exists(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0
}

func fileMode(_ path: String) -> mode_t {
    var info = stat()
    return stat(path, &info) == 0 ? info.st_mode & 0o7777 : 0
}

func isSymbolicLink(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK
}

/// A directory itself, not a symbolic link to one.
func isDirectoryNotLink(_ path: String) -> Bool {
    var info = stat()
    return lstat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFDIR
}

func inode(_ path: String) -> UInt {
    var info = stat()
    return stat(path, &info) == 0 ? UInt(info.st_ino) : 0
}

func contents(_ path: String) -> [UInt8]? { readBytes(path) }

func sha256Hex(_ bytes: [UInt8]) -> String {
    let hasher = SHA256()
    bytes.withUnsafeBytes { hasher.update($0) }
    return hasher.finish()
}

/// Names in a directory, sorted.
func listing(_ path: String) -> [String] { directoryNames(path).sorted() }

let quietLogger: Logger = {
    var logger = Logger(label: "PackageFetchTests")
    logger.logLevel = .error
    return logger
}()

func makeDir(_ path: String) {
    _ = mkdir(path, 0o755)
}

func makeExecutable(_ path: String) {
    _ = chmod(path, 0o755)
}

/// Fetches `request` into `sandbox` (made first) with a fetcher of its own, as a new executor does.
func fetchAsNewExecutor(_ request: FetchRequest, into sandbox: String, configuration: FetcherConfiguration)
    async throws -> FetchedPackage
{
    makeDir(sandbox)
    return try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
        try await $0.fetch(request, into: sandbox)
    }
}

/// Evaluates `condition` until it holds (true) or a minute has passed (false); the bound only
/// bounds a failure.
func eventually(_ condition: () throws -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
        if (try? condition()) == true { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return false
}
