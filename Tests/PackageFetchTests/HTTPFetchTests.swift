import TemporaryDirectory
import FetchPolicy
import NIOHTTP1
import Testing

@testable import PackageFetch

/// Fetches over real HTTP on loopback: success paths, resumption, server failures.
@Suite struct HTTPFetchTests {
    let archive = TestArchive.sparkLike().bytes()

    @Test func tarballIsFetchedVerifiedAndExtracted() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let sandbox = dir + "/sandbox"
                makeDir(sandbox)
                let uri = try FetchURI(server.url("/spark.tgz") + "#sha256=" + sha256Hex(archive))
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) {
                    try await $0.fetch(FetchRequest(package: uri), into: sandbox)
                }
                let home = sandbox + "/spark-3.5.3-bin-hadoop3"
                #expect(package.sparkHome == home)
                #expect(contents(home + "/RELEASE") == Array("Spark 3.5.3\n".utf8))
                #expect(fileMode(home + "/bin/spark-class") & 0o111 != 0)
                #expect(contents(home + "/bin/release") == Array("Spark 3.5.3\n".utf8))
                #expect(package.items[0].cacheHit == false)
                #expect(package.items[0].sha256 == sha256Hex(archive))
                #expect(package.bytesFetched == Int64(archive.count))
                #expect(server.requests("/spark.tgz") == 1)
                // The sandbox holds only the package: no staging left behind.
                #expect(listing(sandbox) == ["spark-3.5.3-bin-hadoop3"])
            }
        }
    }

    /// A URI whose last component decodes to a path (`..%2Fescaped`) is fetched under that
    /// component as it is, inside the directory it is fetched into; decoded, it named a file
    /// outside it, where the executor (root, for a task of any user) would have linked it.
    @Test func anEncodedSlashNeverTakesAFileOutOfItsDirectory() async throws {
        try await FileServer.with { server in
            server.serve("/x/..%2Fescaped", Array("hello".utf8))
            server.serve("/x/a%20b.txt", Array("spaced".utf8))
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let sandbox = dir + "/a/sandbox"
                makeDir(dir + "/a")
                makeDir(sandbox)
                let uris = [try FetchURI(server.url("/x/..%2Fescaped")), try FetchURI(server.url("/x/a%20b.txt"))]
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) {
                    try await $0.fetch(FetchRequest(additional: uris), into: sandbox)
                }
                #expect(package.items.map(\.path) == [sandbox + "/..%2Fescaped", sandbox + "/a b.txt"])
                #expect(contents(sandbox + "/..%2Fescaped") == Array("hello".utf8))
                #expect(listing(dir + "/a") == ["sandbox"])
                #expect(listing(sandbox).sorted() == ["..%2Fescaped", "a b.txt"])
            }
        }
    }

    @Test func checksumMismatchInstallsNothing() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let sandbox = dir + "/sandbox"
                makeDir(sandbox)
                let wrong = String(repeating: "ab", count: 32)
                let uri = try FetchURI(server.url("/spark.tgz") + "#sha256=" + wrong)
                let error = await #expect(throws: FetchError.self) {
                    try await PackageFetcher.withFetcher(
                        configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                    ) {
                        try await $0.fetch(FetchRequest(package: uri), into: sandbox)
                    }
                }
                #expect(error?.isChecksumMismatch == true)
                #expect(error?.description.contains(server.url("/spark.tgz")) == true)
                #expect(error?.description.contains(sha256Hex(archive)) == true)
                #expect(listing(sandbox).isEmpty)
                #expect(listing(dir + "/cache/objects").isEmpty)
                #expect(listing(dir + "/cache/tmp").isEmpty)
            }
        }
    }

    @Test func stalledServerFailsWithStallTimeout() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive, behaviour: .init(ranges: false, stallAt: 1000, faultyRequests: .max))
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                let error = await #expect(throws: FetchError.self) {
                    try await PackageFetcher.withFetcher(
                        configuration: testConfiguration(cache: nil, attempts: 2, stall: .milliseconds(300)),
                        logger: quietLogger
                    ) {
                        try await $0.fetch(
                            FetchRequest(package: FetchURI(server.url("/spark.tgz"))), into: dir + "/sandbox")
                    }
                }
                #expect(error?.description.contains("stalled") == true)
                // Both attempts from the first byte were made: each stalls after bytes arrived (the
                // server allows no resumption). A starved client can see a stall before its first
                // byte, which is retried in place, once per attempt at most: 2 to 4 requests, the
                // last of which may reach a starved server after the client gave up on it.
                #expect(await eventually { server.requests("/spark.tgz") >= 2 })
                #expect(server.requests("/spark.tgz") <= 4)
                #expect(listing(dir + "/sandbox").isEmpty)
            }
        }
    }

    /// The server stalls every request that starts before byte 5000, so the download can only complete
    /// by resuming there. How often the stall timeout fires is up to the machine's speed (a starved test
    /// process can see a healthy connection as stalled), so the assertions hold for any number of
    /// extra stalls: the first resumption starts at the stall, later ones never move back (one that
    /// stalled before a byte arrived is resumed where it started: a CI run under `stress-ng` saw the
    /// same start twice).
    @Test func stalledDownloadResumesWithRange() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive, behaviour: .init(ranges: true, stallAt: 5000, faultyRequests: .max))
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                let uri = try FetchURI(server.url("/spark.tgz") + "#sha256=" + sha256Hex(archive))
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: nil, attempts: 50, stall: .seconds(1)),
                    logger: quietLogger
                ) {
                    try await $0.fetch(FetchRequest(package: uri), into: dir + "/sandbox")
                }
                #expect(package.sparkHome == dir + "/sandbox/spark-3.5.3-bin-hadoop3")
                #expect(package.bytesFetched == Int64(archive.count))
                let starts = server.ranges("/spark.tgz").compactMap { range in
                    range.hasPrefix("bytes=") ? Int(range.dropFirst(6).dropLast()) : nil
                }
                #expect(starts.count == server.ranges("/spark.tgz").count, "\(server.ranges("/spark.tgz"))")
                let resumed = starts.drop { $0 < 5000 }
                #expect(resumed.first == 5000, "\(server.ranges("/spark.tgz"))")
                #expect(resumed.elementsEqual(resumed.sorted()), "\(server.ranges("/spark.tgz"))")
            }
        }
    }

    @Test func droppedConnectionResumesWithRange() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive, behaviour: .init(ranges: true, dropAfter: 20_000))
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                let uri = try FetchURI(server.url("/spark.tgz") + "#sha256=" + sha256Hex(archive))
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) {
                    try await $0.fetch(FetchRequest(package: uri), into: dir + "/sandbox")
                }
                #expect(server.requests("/spark.tgz") == 2)
                #expect(server.ranges("/spark.tgz") == ["bytes=20000-"])
                #expect(contents(package.sparkHome! + "/RELEASE") == Array("Spark 3.5.3\n".utf8))
            }
        }
    }

    @Test func droppedConnectionWithoutRangeStartsAgain() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive, behaviour: .init(ranges: false, dropAfter: 20_000))
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: nil), logger: quietLogger
                ) {
                    try await $0.fetch(
                        FetchRequest(package: FetchURI(server.url("/spark.tgz"))), into: dir + "/sandbox")
                }
                #expect(server.requests("/spark.tgz") == 2)
                #expect(server.ranges("/spark.tgz").isEmpty)
                #expect(contents(package.sparkHome! + "/RELEASE") == Array("Spark 3.5.3\n".utf8))
            }
        }
    }

    @Test(arguments: [404, 500])
    func errorStatusNamesURIAndStatus(status: Int) async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive, behaviour: .init(status: HTTPResponseStatus(statusCode: status)))
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                let error = await #expect(throws: FetchError.self) {
                    try await PackageFetcher.withFetcher(
                        configuration: testConfiguration(cache: dir + "/cache", attempts: 3), logger: quietLogger
                    ) {
                        try await $0.fetch(
                            FetchRequest(package: FetchURI(server.url("/spark.tgz"))), into: dir + "/sandbox")
                    }
                }
                #expect(error?.httpStatus == status)
                #expect(error?.description.contains("HTTP \(status)") == true)
                #expect(error?.description.contains(server.url("/spark.tgz")) == true)
                // 404 is final; 500 is retried.
                #expect(server.requests("/spark.tgz") == (status == 404 ? 1 : 3))
                #expect(listing(dir + "/cache/objects").isEmpty)
            }
        }
    }

    @Test func failedFetchLeavesNoPoisonAndALaterFetchSucceeds() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive, behaviour: .init(status: .internalServerError, statusCount: 1))
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache", attempts: 1), logger: quietLogger
                ) { fetcher in
                    let request = FetchRequest(package: try FetchURI(server.url("/spark.tgz")))
                    let gate = PackageGate { () async throws(FetchError) in
                        try await fetcher.fetch(request, into: dir + "/sandbox")
                    }
                    await #expect(throws: FetchError.self) { try await gate.package() }
                    let package = try await gate.package()
                    #expect(package.items[0].cacheHit == false)
                    #expect(await gate.readyPackage == package)
                }
                #expect(server.requests("/spark.tgz") == 2)
            }
        }
    }

    @Test func redirectsAreFollowed() async throws {
        try await FileServer.with { server in
            server.serve("/real/spark.tgz", archive)
            server.redirect("/spark.tgz", to: server.url("/real/spark.tgz"))
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: nil), logger: quietLogger
                ) {
                    try await $0.fetch(
                        FetchRequest(package: FetchURI(server.url("/spark.tgz"))), into: dir + "/sandbox")
                }
                #expect(package.sparkHome == dir + "/sandbox/spark-3.5.3-bin-hadoop3")
                #expect(server.requests("/real/spark.tgz") == 1)
            }
        }
    }

    @Test(arguments: ["/spark.tgz?token=abc&x=1", "/download?id=42"])
    func queryStringsDoNotDefeatExtraction(path: String) async throws {
        try await FileServer.with { server in
            server.serve(String(path.split(separator: "?")[0]), archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) {
                    try await $0.fetch(FetchRequest(package: FetchURI(server.url(path))), into: dir + "/sandbox")
                }
                #expect(package.items[0].extracted)
                #expect(contents(dir + "/sandbox/spark-3.5.3-bin-hadoop3/RELEASE") == Array("Spark 3.5.3\n".utf8))
            }
        }
    }

    @Test func unreachableServerNamesTheCause() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            makeDir(dir + "/sandbox")
            let error = await #expect(throws: FetchError.self) {
                try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: nil, attempts: 1), logger: quietLogger
                ) {
                    try await $0.fetch(
                        FetchRequest(package: FetchURI("http://no-such-host.invalid/spark.tgz")), into: dir + "/sandbox"
                    )
                }
            }
            #expect(error?.description.hasPrefix("cannot fetch http://no-such-host.invalid/spark.tgz: ") == true)
            #expect(error?.isTransient == true)
        }
    }
}
