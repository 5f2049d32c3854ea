import TemporaryDirectory
import FetchPolicy
import Testing

@testable import PackageFetch

#if canImport(Glibc)
    import Glibc
#endif

/// Payloads without a declared size stop at the free-space reserve of the filesystem they are written
/// to, or at the request's disk cap, with a message naming the limit, and nothing is left behind.
@Suite struct DiskLimitTests {
    static let bombs: [(String, TestArchive)] = [
        ("bomb.gz", TestArchive(entries: [.pattern("bomb", size: 100 << 20)], format: .raw, filter: .gzip)),
        ("bomb.zip", TestArchive(entries: [.pattern("pkg/bomb", size: 100 << 20)], format: .zip, filter: .none)),
        ("bomb.tgz", TestArchive(entries: [.pattern("pkg/bomb", size: 100 << 20)])),
    ]

    /// A 64 MiB tmpfs holds the sandbox (and the cache, in the second round); the bomb expands to
    /// 100 MiB. With a 16 MiB reserve the fetch stops with about 48 MiB written, then removes it.
    @Test(arguments: 0..<bombs.count)
    func bombStopsAtTheFreeSpaceReserve(index: Int) async throws {
        let (name, archive) = Self.bombs[index]
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            #expect(writeBytes(dir + "/" + name, archive.bytes()))
            try await withTmpfs(dir + "/fs", megabytes: 64) { fs in
                let freeBefore = freeBytes(fs)
                for cache in [nil, fs + "/cache"] {
                    let sandbox = fs + "/sandbox"
                    makeDir(sandbox)
                    var configuration = testConfiguration(cache: cache)
                    configuration.freeSpaceReserve = FreeSpaceReserve(bytes: 16 << 20)
                    let error = await #expect(throws: FetchError.self) {
                        try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                            try await $0.fetch(FetchRequest(additional: [FetchURI(dir + "/" + name)]), into: sandbox)
                        }
                    }
                    #expect(error?.isDiskLimit == true, "\(name): \(String(describing: error))")
                    let text = error?.description ?? ""
                    #expect(text.contains("and fetches keep at least 16777216 free"), "\(text)")
                    #expect(
                        text.contains("(free-space reserve: 16777216 bytes; SPARK_MESOS_EXECUTOR_FETCH_MIN_FREE_BYTES)")
                    )
                    #expect(text.contains(cache == nil ? "the sandbox \(sandbox)" : "the fetch cache \(fs)/cache"))
                    #expect(text.hasSuffix("; nothing was installed"))
                    #expect(listing(sandbox).isEmpty, "\(name)")
                    if let cache { #expect(listing(cache + "/objects").isEmpty, "\(name)") }
                    // Everything written was removed again (a few KiB of directories may remain). The
                    // space can come back a moment after the fetch: a process another test spawns at
                    // that moment holds a copy of our descriptors until it execs (30 ms seen).
                    #expect(await eventually { freeBytes(fs) > freeBefore - (1 << 20) }, "\(name)")
                }
            }
        }
    }

    /// The same fetch goes through once the reserve allows it, so the limit is the reserve and not
    /// the filesystem.
    @Test func aPackageThatFitsAboveTheReserveIsInstalled() async throws {
        let archive = TestArchive(entries: [.pattern("data", size: 20 << 20)], format: .raw, filter: .gzip)
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            #expect(writeBytes(dir + "/data.gz", archive.bytes()))
            try await withTmpfs(dir + "/fs", megabytes: 64) { fs in
                makeDir(fs + "/sandbox")
                var configuration = testConfiguration(cache: nil)
                configuration.freeSpaceReserve = FreeSpaceReserve(bytes: 16 << 20)
                let package = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                    try await $0.fetch(FetchRequest(additional: [FetchURI(dir + "/data.gz")]), into: fs + "/sandbox")
                }
                #expect(package.items[0].bytes == 20 << 20)
                #expect(fileSize(fs + "/sandbox/data") == 20 << 20)
            }
        }
    }

    /// The executor's `disk` resource caps what the fetch puts into the sandbox: a download stops
    /// at it, and a cache hit whose hard links would take more than what is left is refused too; a
    /// hit linked by a symbolic link takes no room in the sandbox.
    @Test func diskCapStopsDownloadsAndHits() async throws {
        let archive = TestArchive(entries: [.pattern("pkg/bomb", size: 12 << 20)], format: .zip, filter: .none)
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            #expect(writeBytes(dir + "/pkg.zip", archive.bytes()))
            #expect(writeBytes(dir + "/small.txt", Array(repeating: 7, count: 3 << 20)))
            var configuration = testConfiguration(cache: dir + "/cache")
            configuration.freeSpaceReserve = .none
            for round in 0..<2 {
                let sandbox = dir + "/sandbox-\(round)"
                makeDir(sandbox)
                let request = try FetchRequest(
                    package: FetchURI(dir + "/small.txt"), additional: [FetchURI(dir + "/pkg.zip")],
                    cacheLink: .hardLinks, diskLimitBytes: 10 << 20)
                let error = await #expect(throws: FetchError.self) {
                    try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                        try await $0.fetch(request, into: sandbox)
                    }
                }
                #expect(error?.isDiskLimit == true, "\(String(describing: error))")
                #expect(error?.uri == dir + "/pkg.zip")
                #expect(error?.description.contains("more than the executor's disk resource allows") == true)
                #expect(listing(sandbox) == ["small.txt"])
                if round == 0 {
                    // The download stopped at the cap: nothing was cached.
                    #expect(
                        error?.cause
                            == "stopped after writing \(7 << 20) bytes: the fetched files would take more than the "
                            + "executor's disk resource allows (10485760 bytes, \(3 << 20) of them taken by the URIs "
                            + "fetched before); nothing was installed")
                    makeDir(dir + "/warm")
                    _ = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                        try await $0.fetch(FetchRequest(package: FetchURI(dir + "/pkg.zip")), into: dir + "/warm")
                    }
                } else {
                    // A hit writes nothing, but its hard links take the same room in the sandbox.
                    #expect(
                        error?.cause
                            == "the fetched files would take \(15 << 20) bytes in the sandbox, more than the executor's "
                            + "disk resource allows (10485760 bytes); nothing was installed")
                }
            }
            makeDir(dir + "/fits")
            let fits = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                try await $0.fetch(
                    FetchRequest(package: FetchURI(dir + "/pkg.zip"), cacheLink: .hardLinks, diskLimitBytes: 12 << 20),
                    into: dir + "/fits")
            }
            #expect(fits.items[0].bytes == 12 << 20)
            makeDir(dir + "/linked")
            let linked = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                try await $0.fetch(
                    FetchRequest(
                        package: FetchURI(dir + "/small.txt"), additional: [FetchURI(dir + "/pkg.zip")],
                        diskLimitBytes: 10 << 20),
                    into: dir + "/linked")
            }
            #expect(linked.items.map(\.bytes) == [3 << 20, 0])
            #expect(isSymbolicLink(dir + "/linked/pkg"))
            #expect(contents(dir + "/linked/pkg/bomb")?.count == 12 << 20)
        }
    }

    @Test func reserveFromBytes() throws {
        var configuration = FetcherConfiguration()
        #expect(configuration.freeSpaceReserve == .standard)
        #expect("\(FreeSpaceReserve.standard)" == "the larger of 1073741824 bytes and 5 % of the filesystem")
        #expect(FreeSpaceReserve.standard.bytes(onFilesystemOf: 10 << 30) == 1 << 30)
        #expect(FreeSpaceReserve.standard.bytes(onFilesystemOf: 100 << 30) == 5 << 30)
        // SPARK_MESOS_EXECUTOR_FETCH_MIN_FREE_BYTES is read by ExecutorConfiguration (see
        // ExecutorConfigurationTests); the executor sets the reserve from its bytes.
        configuration.freeSpaceReserve = FreeSpaceReserve(bytes: 2 << 30)
        #expect(configuration.freeSpaceReserve.bytes(onFilesystemOf: 100 << 30) == 2 << 30)
        #expect(FreeSpaceReserve(bytes: 0) == FreeSpaceReserve.none)
    }
}

/// Runs `body` with a fresh tmpfs of `megabytes` mounted at `path`, unmounted afterwards. Mounting
/// needs root (CAP_SYS_ADMIN); where it is not permitted the test says so and passes without running.
func withTmpfs(_ path: String, megabytes: Int, _ body: (String) async throws -> Void) async throws {
    makeDir(path)
    guard mount("tmpfs", path, "tmpfs", 0, "size=\(megabytes)m,mode=0755") == 0 else {
        print("skipped: cannot mount a tmpfs at \(path): \(String(cString: strerror(errno)))")
        return
    }
    defer { umount2(path, Int32(MNT_DETACH)) }
    try await body(path)
}

func freeBytes(_ path: String) -> Int64 {
    var info = statvfs()
    guard statvfs(path, &info) == 0 else { return -1 }
    return Int64(info.f_bavail) * Int64(info.f_frsize)
}

func fileSize(_ path: String) -> Int64 {
    var info = stat()
    return stat(path, &info) == 0 ? Int64(info.st_size) : -1
}
