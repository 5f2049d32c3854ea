import Testing

@testable import PackageFetch

/// The shared cache: one download for concurrent fetchers, hits across restarts, eviction, maintenance.
@Suite struct CacheTests {
    let archive = TestArchive.sparkLike().bytes()

    @Test func concurrentFetchersDownloadOnce() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory { dir in
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
            try await withTemporaryDirectory { dir in
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
            try await withTemporaryDirectory { dir in
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

    @Test func disabledCacheFetchesIntoTheSandbox() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory { dir in
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
            try await withTemporaryDirectory { dir in
                var configuration = testConfiguration(cache: dir + "/cache")
                for (index, path) in ["/spark.tgz", "/other.tgz"].enumerated() {
                    makeDir(dir + "/s\(index)")
                    _ = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                        try await $0.fetch(FetchRequest(package: FetchURI(server.url(path))), into: dir + "/s\(index)")
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
                // The sandboxes keep their files: hard links outlive the cache entry.
                #expect(contents(dir + "/s0/spark-3.5.3-bin-hadoop3/RELEASE") == Array("Spark 3.5.3\n".utf8))
            }
        }
    }

    @Test func insertEvictsLeastRecentlyUsedOverTheCap() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            server.serve("/other.tgz", TestArchive.sparkLike(top: "other-1.0").bytes())
            try await withTemporaryDirectory { dir in
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
}

/// Evaluates `condition` until it holds (true) or a minute has passed (false); the bound only
/// bounds a failure.
private func eventually(_ condition: () throws -> Bool) async -> Bool {
    let deadline = ContinuousClock.now + .seconds(60)
    while ContinuousClock.now < deadline {
        if (try? condition()) == true { return true }
        try? await Task.sleep(for: .milliseconds(10))
    }
    return false
}
