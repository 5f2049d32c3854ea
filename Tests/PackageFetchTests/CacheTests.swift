import TemporaryDirectory
import FetchPolicy
import Testing

@testable import PackageFetch

#if canImport(Glibc)
    import Glibc
#endif

/// The shared cache: one download for concurrent fetchers, hits across restarts, eviction, maintenance.
@Suite struct CacheTests {
    let archive = TestArchive.sparkLike().bytes()

    @Test func concurrentFetchersDownloadOnce() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let configuration = testConfiguration(cache: dir + "/cache")
                let uri = try FetchURI(server.url("/spark.tgz"))
                // Two independent fetchers (separate flock open file descriptions, as two processes).
                let results = try await withThrowingTaskGroup(of: FetchedPackage.self) { group in
                    for index in 0..<2 {
                        let sandbox = dir + "/sandbox\(index)"
                        makeDir(sandbox)
                        group.addTask {
                            try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                                try await $0.fetch(FetchRequest(package: uri), into: sandbox)
                            }
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(server.requests("/spark.tgz") == 1)
                #expect(results.filter { $0.items[0].cacheHit }.count == 1)
                let jar = "/spark-3.5.3-bin-hadoop3/jars/spark-core.jar"
                #expect(inode(dir + "/sandbox0" + jar) == inode(dir + "/sandbox1" + jar))
            }
        }
    }

    @Test func cacheHitAfterRestartMakesNoRequest() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let configuration = testConfiguration(cache: dir + "/cache")
                let uri = try FetchURI(server.url("/spark.tgz"))
                for index in 0..<2 {
                    let sandbox = dir + "/sandbox\(index)"
                    makeDir(sandbox)
                    // A new fetcher each time: the executor (or agent) restarted.
                    let package = try await PackageFetcher.withFetcher(
                        configuration: configuration, logger: quietLogger
                    ) {
                        try await $0.fetch(FetchRequest(package: uri), into: sandbox)
                    }
                    #expect(package.allCacheHits == (index == 1))
                    #expect(package.items[0].sha256 == sha256Hex(archive))
                    #expect(contents(package.sparkHome! + "/bin/release") == Array("Spark 3.5.3\n".utf8))
                }
                #expect(server.requests("/spark.tgz") == 1)
                // Cached files are read-only, so a sandbox cannot alter the cache through its links.
                #expect(fileMode(dir + "/sandbox1/spark-3.5.3-bin-hadoop3/RELEASE") & 0o222 == 0)
            }
        }
    }

    @Test func sameContentUnderAnotherURIHitsByChecksum() async throws {
        try await FileServer.with { server in
            server.serve("/a/spark.tgz", archive)
            server.serve("/b/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let sha = sha256Hex(archive)
                try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) { fetcher in
                    for (index, path) in ["/a/spark.tgz", "/b/spark.tgz"].enumerated() {
                        makeDir(dir + "/s\(index)")
                        let uri = try FetchURI(server.url(path) + "#sha256=" + sha)
                        _ = try await fetcher.fetch(FetchRequest(package: uri), into: dir + "/s\(index)")
                    }
                }
                #expect(server.requests("/a/spark.tgz") == 1)
                #expect(server.requests("/b/spark.tgz") == 0)
            }
        }
    }

    /// By default the package directory is one symbolic link to the cached tree, which is read-only
    /// (directories too, so a task cannot add files to the cache through the link).
    @Test func theCachedTreeIsLinkedReadOnly() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let configuration = testConfiguration(cache: dir + "/cache")
                let uri = try FetchURI(server.url("/spark.tgz"))
                var packages: [FetchedPackage] = []
                for index in 0..<2 {
                    packages.append(
                        try await fetchAsNewExecutor(
                            FetchRequest(package: uri), into: dir + "/s\(index)", configuration: configuration))
                }
                #expect(packages.map(\.allCacheHits) == [false, true])
                let entry = try #require(try FetchCache(directory: dir + "/cache").list().first)
                let cached = dir + "/cache/objects/" + entry.name + "/data/spark-3.5.3-bin-hadoop3"
                for (index, package) in packages.enumerated() {
                    let home = dir + "/s\(index)/spark-3.5.3-bin-hadoop3"
                    #expect(package.sparkHome == home)
                    #expect(package.items[0].bytes == 0)
                    #expect(isSymbolicLink(home))
                    #expect(canonicalPath(home) == canonicalPath(cached))
                    #expect(contents(home + "/bin/release") == Array("Spark 3.5.3\n".utf8))
                }
                for path in ["", "/bin", "/jars", "/RELEASE", "/jars/spark-core.jar"] {
                    #expect(fileMode(cached + path) & 0o222 == 0, "\(path) is writable")
                }
                // A link left by an earlier fetch into the same sandbox is replaced.
                _ = try await fetchAsNewExecutor(
                    FetchRequest(package: uri), into: dir + "/s1", configuration: configuration)
                #expect(isSymbolicLink(dir + "/s1/spark-3.5.3-bin-hadoop3"))
            }
        }
    }

    /// `hardlinks` gives the task a private tree: its own directories, the cache's read-only files.
    @Test func hardLinksMakeAPrivateTree() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let configuration = testConfiguration(cache: dir + "/cache")
                let request = FetchRequest(package: try FetchURI(server.url("/spark.tgz")), cacheLink: .hardLinks)
                for index in 0..<2 {
                    let package = try await fetchAsNewExecutor(
                        request, into: dir + "/s\(index)", configuration: configuration)
                    #expect(package.allCacheHits == (index == 1))
                    #expect(package.items[0].bytes > 100_000)
                    #expect(isDirectoryNotLink(package.sparkHome!))
                }
                #expect(writeBytes(dir + "/s0/spark-3.5.3-bin-hadoop3/bin/mine", [1]))
                #expect(!exists(dir + "/s1/spark-3.5.3-bin-hadoop3/bin/mine"))
                let jar = "/spark-3.5.3-bin-hadoop3/jars/spark-core.jar"
                #expect(inode(dir + "/s0" + jar) == inode(dir + "/s1" + jar))
            }
        }
    }

    /// A directory already in the sandbox where the package has one is merged into (hard links),
    /// not replaced; the package's other top-level directories are still linked.
    @Test func aDirectoryInTheWayIsMergedInto() async throws {
        try await FileServer.with { server in
            let twoTops = TestArchive(entries: [
                .file("conf/spark-defaults.conf", Array("a 1\n".utf8)), .file("lib/x.jar", [1, 2, 3]),
                .file("NOTICE", Array("n\n".utf8)),
            ])
            server.serve("/two.tgz", twoTops.bytes())
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let configuration = testConfiguration(cache: dir + "/cache")
                let request = FetchRequest(package: try FetchURI(server.url("/two.tgz")))
                for index in 0..<2 {
                    let sandbox = dir + "/s\(index)"
                    makeDir(sandbox)
                    makeDir(sandbox + "/conf")
                    #expect(writeBytes(sandbox + "/conf/mine.conf", [7]))
                    let package = try await fetchAsNewExecutor(request, into: sandbox, configuration: configuration)
                    #expect(package.sparkHome == sandbox)
                    #expect(package.items[0].bytes == 3 + 2 + 4, "counted as hard links: a directory was merged")
                    #expect(isDirectoryNotLink(sandbox + "/conf"))
                    #expect(listing(sandbox + "/conf") == ["mine.conf", "spark-defaults.conf"])
                    #expect(isSymbolicLink(sandbox + "/lib"))
                    #expect(contents(sandbox + "/lib/x.jar") == [1, 2, 3])
                    #expect(!isSymbolicLink(sandbox + "/NOTICE") && contents(sandbox + "/NOTICE") == Array("n\n".utf8))
                }
            }
        }
    }

    /// An entry published before the cache made directories read-only is made read-only on its
    /// first linked hit.
    @Test func anOlderWritableEntryIsMadeReadOnlyBeforeItIsLinked() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let configuration = testConfiguration(cache: dir + "/cache")
                let uri = try FetchURI(server.url("/spark.tgz"))
                _ = try await fetchAsNewExecutor(
                    FetchRequest(package: uri, cacheLink: .hardLinks), into: dir + "/s0", configuration: configuration)
                let entry = try #require(try FetchCache(directory: dir + "/cache").list().first)
                let object = dir + "/cache/objects/" + entry.name
                // As an older version left it: writable directories, no top directory in its metadata.
                for path in ["", "/jars"] { chmod(object + "/data/spark-3.5.3-bin-hadoop3" + path, 0o755) }
                let meta = try #require(readSmallFile(object + "/meta"))
                var metadata = try #require(EntryMetadata(meta))
                metadata.name = ""
                #expect(writeBytes(object + "/meta", Array(metadata.encoded().utf8)))
                let package = try await fetchAsNewExecutor(
                    FetchRequest(package: uri), into: dir + "/s1", configuration: configuration)
                #expect(package.allCacheHits)
                #expect(isSymbolicLink(dir + "/s1/spark-3.5.3-bin-hadoop3"))
                for path in ["", "/jars"] {
                    #expect(fileMode(object + "/data/spark-3.5.3-bin-hadoop3" + path) & 0o222 == 0)
                }
            }
        }
    }

    @Test func disabledCacheFetchesIntoTheSandbox() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                let uri = try FetchURI(server.url("/spark.tgz"), cache: false)
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) {
                    try await $0.fetch(FetchRequest(package: uri), into: dir + "/sandbox")
                }
                #expect(contents(package.sparkHome! + "/RELEASE") != nil)
                #expect(listing(dir + "/sandbox") == ["spark-3.5.3-bin-hadoop3"])
                #expect(!exists(dir + "/cache/objects"))
            }
        }
    }

    @Test func listPruneAndClear() async throws {
        try await FileServer.with { server in
            let other = TestArchive.sparkLike(top: "other-1.0").bytes()
            server.serve("/spark.tgz", archive)
            server.serve("/other.tgz", other)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                var configuration = testConfiguration(cache: dir + "/cache")
                for (index, path) in ["/spark.tgz", "/other.tgz"].enumerated() {
                    makeDir(dir + "/s\(index)")
                    _ = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                        let link: CacheLink = index == 0 ? .hardLinks : .symlink
                        return try await $0.fetch(
                            FetchRequest(package: FetchURI(server.url(path)), cacheLink: link), into: dir + "/s\(index)"
                        )
                    }
                }
                let cache = FetchCache(directory: dir + "/cache")
                let entries = try cache.list()
                #expect(entries.count == 2)
                #expect(Set(entries.map(\.uri)) == [server.url("/spark.tgz"), server.url("/other.tgz")])
                #expect(entries.allSatisfy { $0.kind == "tree" && $0.bytes > 100_000 })
                // A child process another test spawns holds a copy of every descriptor of this process
                // (a lease's flock too) until it execs, so an entry can look in use for that moment:
                // the cache is conservative then, and these checks look again.
                #expect(await eventually { try cache.list().allSatisfy { !$0.inUse } })

                // A fetcher holding an entry keeps it from clear(); LRU eviction takes the other.
                configuration.cacheMaxBytes = entries[0].bytes + 1
                try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) { fetcher in
                    makeDir(dir + "/s2")
                    _ = try await fetcher.fetch(
                        FetchRequest(package: FetchURI(server.url("/spark.tgz"))), into: dir + "/s2")
                    var removed = 0
                    var skipped = 0
                    #expect(
                        await eventually {
                            let report = try cache.clear()
                            removed += report.removedEntries.count
                            skipped = report.skippedInUse.count
                            return removed == 1
                        })
                    #expect(skipped == 1)
                    #expect(try cache.list().map(\.uri) == [server.url("/spark.tgz")])
                }
                var removed = 0
                #expect(
                    await eventually {
                        removed += try cache.clear().removedEntries.count
                        return removed == 1
                    })
                #expect(try cache.list().isEmpty)
                // A sandbox with hard links keeps its files; a symbolic link to an evicted entry dangles
                // (the entry was kept while an executor used it).
                #expect(contents(dir + "/s0/spark-3.5.3-bin-hadoop3/RELEASE") == Array("Spark 3.5.3\n".utf8))
                #expect(isSymbolicLink(dir + "/s1/other-1.0") && contents(dir + "/s1/other-1.0/RELEASE") == nil)
            }
        }
    }

    @Test func insertEvictsLeastRecentlyUsedOverTheCap() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            server.serve("/other.tgz", TestArchive.sparkLike(top: "other-1.0").bytes())
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                var configuration = testConfiguration(cache: dir + "/cache")
                configuration.cacheMaxBytes = 600_000
                for (index, path) in ["/spark.tgz", "/other.tgz"].enumerated() {
                    makeDir(dir + "/s\(index)")
                    _ = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                        try await $0.fetch(FetchRequest(package: FetchURI(server.url(path))), into: dir + "/s\(index)")
                    }
                }
                #expect(try FetchCache(directory: dir + "/cache").list().map(\.uri) == [server.url("/other.tgz")])
            }
        }
    }

    /// The cache's folders (prepared by every fetch) and a fetch's destination are made this way.
    @Test func makeDirectoriesCreatesMissingParentsAcceptsWhatExistsAndNamesWhatIsInTheWay() async throws {
        try withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            #expect(makeDirectories(dir + "/a/b/c") == nil)
            #expect(isDirectoryNotLink(dir + "/a/b/c"))
            #expect(makeDirectories(dir + "/a/b/c") == nil)
            #expect(makeDirectories(dir + "/a/b/d") == nil)
            #expect(isDirectoryNotLink(dir + "/a/b/d"))
            #expect(writeBytes(dir + "/a/file", [1]))
            let failure = makeDirectories(dir + "/a/file/e")
            #expect(failure?.description.contains(dir + "/a/file/e") == true)
            #expect(failure?.description.contains("Not a directory") == true)
        }
    }
}
