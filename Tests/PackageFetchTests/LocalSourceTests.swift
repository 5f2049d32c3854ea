import TemporaryDirectory
import FetchPolicy
import Testing
import ProcessSupervision

#if canImport(Glibc)
    import Glibc
#endif

@testable import PackageFetch

/// file:// and plain paths, every archive type, flags, hadoop schemes and request building.
@Suite struct LocalSourceTests {
    static let kinds: [(String, TestArchive)] = [
        ("spark.tar", TestArchive.sparkLike(filter: .none)),
        ("spark.tgz", TestArchive.sparkLike(filter: .gzip)),
        ("spark.tbz2", TestArchive.sparkLike(filter: .bzip2)),
        ("spark.txz", TestArchive.sparkLike(filter: .xz)),
        ("spark.zip", TestArchive.sparkLike(filter: .none, format: .zip)),
    ]

    @Test(arguments: 0..<kinds.count)
    func everyArchiveTypeExtracts(index: Int) async throws {
        let (name, archive) = Self.kinds[index]
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            #expect(writeBytes(dir + "/" + name, archive.bytes()))
            makeDir(dir + "/sandbox")
            for (round, value) in ["file://" + dir + "/" + name, dir + "/" + name].enumerated() {
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) {
                    try await $0.fetch(FetchRequest(package: FetchURI(value)), into: dir + "/sandbox")
                }
                #expect(package.sparkHome == dir + "/sandbox/spark-3.5.3-bin-hadoop3", "\(name)")
                #expect(package.allCacheHits == (round == 1), "\(name)")
                #expect(
                    contents(dir + "/sandbox/spark-3.5.3-bin-hadoop3/jars/current.jar")?.count == 100_000, "\(name)")
            }
        }
    }

    @Test func plainGzipIsDecompressed() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            let text = Array(String(repeating: "spark.executor.memory 4g\n", count: 100).utf8)
            let gz = TestArchive(entries: [.file("ignored", text)], format: .raw, filter: .gzip).bytes()
            #expect(writeBytes(dir + "/spark-defaults.conf.gz", gz))
            makeDir(dir + "/sandbox")
            let package = try await PackageFetcher.withFetcher(
                configuration: testConfiguration(cache: nil), logger: quietLogger
            ) {
                try await $0.fetch(
                    FetchRequest(additional: [FetchURI(dir + "/spark-defaults.conf.gz")]), into: dir + "/sandbox")
            }
            #expect(package.items[0].path == dir + "/sandbox/spark-defaults.conf")
            #expect(contents(dir + "/sandbox/spark-defaults.conf") == text)
        }
    }

    @Test func flagsExecutableExtractAndOutputFile() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            let archive = TestArchive.sparkLike().bytes()
            #expect(writeBytes(dir + "/run.sh", Array("#!/bin/sh\n".utf8)))
            #expect(writeBytes(dir + "/spark.tgz", archive))
            #expect(writeBytes(dir + "/app.jar", [1, 2, 3]))
            makeDir(dir + "/sandbox")
            let request = FetchRequest(additional: [
                try FetchURI(dir + "/run.sh", executable: true),
                try FetchURI(dir + "/spark.tgz", extract: false, outputFile: "lib/kept.tgz"),
                try FetchURI(dir + "/app.jar"),
            ])
            for _ in 0..<2 {
                let package = try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) {
                    try await $0.fetch(request, into: dir + "/sandbox")
                }
                #expect(fileMode(dir + "/sandbox/run.sh") & 0o111 == 0o111)
                #expect(contents(dir + "/sandbox/lib/kept.tgz") == archive)
                #expect(contents(dir + "/sandbox/app.jar") == [1, 2, 3])
                #expect(package.items.map(\.extracted) == [false, false, false])
                #expect(package.sparkHome == nil)
            }
        }
    }

    /// Nothing fetched goes through a link in the sandbox: an `output_file` under a link (one the
    /// agent's fetcher extracted, pointing anywhere), or an uncached archive whose top folder is
    /// already in the sandbox as the link to another copy in the read-only cache, fails naming the
    /// link, and nothing is written where it points (before, the second wrote into the shared cache).
    @Test func nothingIsFetchedThroughALinkInTheSandbox() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            let archive = TestArchive.sparkLike().bytes()
            #expect(writeBytes(dir + "/spark.tgz", archive))
            #expect(writeBytes(dir + "/app.jar", [1, 2, 3]))
            makeDir(dir + "/sandbox")
            makeDir(dir + "/outside")
            #expect(symlink(dir + "/outside", dir + "/sandbox/conf") == 0)
            func fetch(_ uris: [FetchURI]) async throws -> FetchedPackage {
                try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) {
                    try await $0.fetch(FetchRequest(additional: uris), into: dir + "/sandbox")
                }
            }
            for uri in [
                try FetchURI(dir + "/app.jar", outputFile: "conf/app.jar"),
                try FetchURI(dir + "/spark.tgz", outputFile: "conf/spark.tgz"),
            ] {
                let error = await #expect(throws: FetchError.self) { try await fetch([uri]) }
                #expect(
                    error?.description.hasSuffix(
                        "cannot create the directory '\(dir)/sandbox/conf': a link is in its place") == true,
                    "\(error?.description ?? "")")
            }
            #expect(listing(dir + "/outside").isEmpty)

            let top = dir + "/sandbox/spark-3.5.3-bin-hadoop3"
            _ = try await fetch([try FetchURI(dir + "/spark.tgz")])
            var info = stat()
            #expect(lstat(top, &info) == 0 && info.st_mode & S_IFMT == S_IFLNK)
            var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
            let count = readlink(top, &buffer, buffer.count - 1)
            let cached = String(decoding: buffer[0..<max(count, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
            func tree() throws -> [String] { try TreeManifest.scan(cached).get().items.map(\.path).sorted() }
            let before = try tree()
            #expect(!before.isEmpty)
            let error = await #expect(throws: FetchError.self) {
                try await fetch([try FetchURI(dir + "/spark.tgz", cache: false)])
            }
            #expect(
                error?.description.contains("'\(top)': a link is in its place") == true, "\(error?.description ?? "")")
            #expect(try tree() == before)
        }
    }

    @Test func missingFileNamesThePath() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            makeDir(dir + "/sandbox")
            let error = await #expect(throws: FetchError.self) {
                try await PackageFetcher.withFetcher(
                    configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
                ) {
                    try await $0.fetch(FetchRequest(package: FetchURI(dir + "/nope.tgz")), into: dir + "/sandbox")
                }
            }
            #expect(error?.description == "cannot fetch \(dir)/nope.tgz: no such file '\(dir)/nope.tgz' on this agent")
        }
    }

    /// Run as root (as CI runs): a fetch for a task of another user (`FetchRequest.user`) reads a
    /// local file with that user's permissions, as Mesos's fetcher does, so a file only the
    /// executor may read is refused rather than copied for the user; the user's cache entries are
    /// its own (the executor's cached copy of a file is no hit for it); hadoop runs as the user.
    @Test(.enabled(if: geteuid() == 0, "reading as another user needs root"))
    func aFetchForAnotherUserHasThatUsersPermissions() async throws {
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            try #require(chmod(dir, 0o755) == 0)
            #expect(writeBytes(dir + "/public.txt", [1]) && chmod(dir + "/public.txt", 0o644) == 0)
            #expect(writeBytes(dir + "/secret.txt", [2]) && chmod(dir + "/secret.txt", 0o600) == 0)
            makeDir(dir + "/user")
            // A hadoop whose every file holds the id of the user it runs as.
            let configuration = Self.withHadoop(in: dir, script: "#!/bin/sh\nid -u\n")
            try #require(chmod(dir + "/hadoop", 0o755) == 0 && chmod(dir + "/hadoop/bin", 0o755) == 0)
            try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) { fetcher in
                let both = [try FetchURI(dir + "/public.txt"), try FetchURI(dir + "/secret.txt")]
                let executors = try await fetcher.fetch(FetchRequest(additional: both), into: dir + "/sandbox")
                #expect(executors.items.map(\.cacheHit) == [false, false])
                for round in 0..<2 {
                    let users = try await fetcher.fetch(
                        FetchRequest(additional: [both[0]], user: nobody), into: dir + "/user")
                    #expect(users.items.map(\.cacheHit) == [round == 1], "the user's own entry, made once")
                    #expect(contents(dir + "/user/public.txt") == [1])
                }
                let refused = await #expect(throws: FetchError.self) {
                    try await fetcher.fetch(FetchRequest(additional: [both[1]], user: nobody), into: dir + "/user")
                }
                #expect(
                    refused?.description
                        == "cannot fetch \(dir)/secret.txt: cannot open '\(dir)/secret.txt' as user nobody: "
                        + "Permission denied")
                #expect(!exists(dir + "/user/secret.txt"))
                _ = try await fetcher.fetch(
                    FetchRequest(additional: [try FetchURI("hdfs://nn/whoami")], user: nobody), into: dir + "/user")
                #expect(contents(dir + "/user/whoami").map { String(decoding: $0, as: UTF8.self) } == "\(nobody.uid)\n")
            }
        }
    }

    @Test func hadoopSchemesUseHadoopCat() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            let archive = TestArchive.sparkLike().bytes()
            #expect(writeBytes(dir + "/remote.tgz", archive))
            // A stand-in for the Hadoop CLI: maps hdfs://nn/<path> and s3a://bucket/<path> to <dir>/<path>.
            let configuration = Self.withHadoop(
                in: dir,
                script: """
                    #!/bin/sh
                    [ "$1" = fs ] && [ "$2" = -cat ] && [ $# = 3 ] || { echo "bad arguments: $*" >&2; exit 2; }
                    src=$(echo "$3" | sed -e 's|^[a-z0-9]*://[^/]*/||')
                    [ -f "\(dir)/$src" ] || { echo "cat: \\`$3': No such file or directory" >&2; exit 1; }
                    exec cat "\(dir)/$src"
                    """)
            let package = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                try await $0.fetch(FetchRequest(package: FetchURI("hdfs://nn/remote.tgz")), into: dir + "/sandbox")
            }
            #expect(package.sparkHome == dir + "/sandbox/spark-3.5.3-bin-hadoop3")
            let error = await #expect(throws: FetchError.self) {
                try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                    try await $0.fetch(
                        FetchRequest(package: FetchURI("s3a://bucket/missing.tgz")), into: dir + "/sandbox")
                }
            }
            #expect(error?.description.contains("exit status 1") == true)
            #expect(error?.description.contains("No such file or directory") == true)
        }
    }

    /// A fetch through hadoop that is cancelled takes hadoop down with it, and what hadoop started.
    @Test func aCancelledHadoopFetchKillsHadoopAndWhatItStarted() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            // A hadoop that never finishes: it starts a helper, says who they are, and waits.
            let configuration = Self.withHadoop(
                in: dir,
                script: """
                    #!/bin/sh
                    sleep 300 &
                    echo "$$ $!" > "\(dir)/pids.tmp" && mv "\(dir)/pids.tmp" "\(dir)/pids"
                    wait
                    """)
            let fetch = Task {
                try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                    try await $0.fetch(FetchRequest(package: FetchURI("hdfs://nn/never.tgz")), into: dir + "/sandbox")
                }
            }
            var pids: [Int32] = []
            let deadline = ContinuousClock.now + .seconds(120)
            while pids.count < 2, ContinuousClock.now < deadline {
                pids =
                    contents(dir + "/pids").map { String(decoding: $0, as: UTF8.self) }?
                    .split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Int32($0) } ?? []
                if pids.count < 2 { try await Task.sleep(for: .milliseconds(10)) }
            }
            try #require(pids.count == 2, "hadoop did not start")
            fetch.cancel()
            await #expect(throws: (any Error).self) { try await fetch.value }
            for pid in pids {
                #expect(
                    await ProcessObservation.waitForExit(of: pid, timeoutMilliseconds: 60_000), "pid \(pid) survived")
            }
        }
    }

    /// A fetcher configuration whose hadoop is `script` (at `dir`/hadoop/bin/hadoop), with a cache
    /// and a sandbox in `dir`.
    private static func withHadoop(in dir: String, script: String) -> FetcherConfiguration {
        makeDir(dir + "/hadoop")
        makeDir(dir + "/hadoop/bin")
        #expect(writeBytes(dir + "/hadoop/bin/hadoop", Array(script.utf8)))
        makeExecutable(dir + "/hadoop/bin/hadoop")
        var configuration = testConfiguration(cache: dir + "/cache")
        configuration.hadoopHome = dir + "/hadoop"
        configuration.searchPath = "/usr/bin:/bin"
        configuration.hadoopEnvironment = ["HADOOP_HOME=\(dir)/hadoop", "PATH=/usr/bin:/bin"]
        makeDir(dir + "/sandbox")
        return configuration
    }

    @Test func missingHadoopIsNamed() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            makeDir(dir + "/sandbox")
            var configuration = testConfiguration(cache: nil)
            configuration.searchPath = dir
            configuration.hadoopEnvironment = ["PATH=\(dir)"]
            let error = await #expect(throws: FetchError.self) {
                try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                    try await $0.fetch(FetchRequest(package: FetchURI("s3://bucket/spark.tgz")), into: dir + "/sandbox")
                }
            }
            #expect(error?.description.contains("HADOOP_HOME is not set") == true)
            #expect(error?.description.contains("'hadoop' is not on PATH (\(dir))") == true)
        }
    }

    @Test func executorHomeIsUsedWithoutURIsAndMustExist() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            makeDir(dir + "/sandbox")
            makeDir(dir + "/spark")
            let fetched = try await PackageFetcher.withFetcher(
                configuration: testConfiguration(cache: nil), logger: quietLogger
            ) { fetcher in
                let good = FetchRequest(executorHome: dir + "/spark")
                let package = try await fetcher.fetch(good, into: dir + "/sandbox")
                let bad = FetchRequest(executorHome: dir + "/nope")
                let error = await #expect(throws: FetchError.self) {
                    try await fetcher.fetch(bad, into: dir + "/sandbox")
                }
                #expect(error?.description.contains("spark.mesos.executor.home '\(dir)/nope' does not exist") == true)
                await #expect(throws: FetchError.self) {
                    try await fetcher.fetch(FetchRequest(), into: dir + "/sandbox")
                }
                return package
            }
            #expect(fetched.sparkHome == dir + "/spark")
        }
    }
}

@Suite struct RequestParsingTests {
    /// What logs and errors print of a URI: never its password.
    @Test func passwordsAreMaskedWhereURIsArePrinted() throws {
        #expect(FetchURI.withoutPassword("http://u:p@h/x") == "http://u:***@h/x")
        #expect(FetchURI.withoutPassword("https://u:p:q@h:8443") == "https://u:***@h:8443")
        #expect(FetchURI.withoutPassword("hdfs://u:secret@nn/spark.tgz") == "hdfs://u:***@nn/spark.tgz")
        #expect(FetchURI.withoutPassword("https://u@h/x") == "https://u@h/x")
        #expect(FetchURI.withoutPassword("http://h/x?a=b@c:d") == "http://h/x?a=b@c:d")
        #expect(FetchURI.withoutPassword("/opt/spark.tgz") == "/opt/spark.tgz")
        #expect(
            try FetchURI("http://u:pw@h/spark.tgz#sha256=" + String(repeating: "0", count: 64)).description
                == "http://u:***@h/spark.tgz#sha256=" + String(repeating: "0", count: 64))
    }

    @Test func uriParsing() throws {
        let sha = String(repeating: "0f", count: 32)
        let uri = try FetchURI("https://h:8/a/spark-3.5.3.tgz?sig=x/y#sha256=" + sha.uppercased())
        #expect(uri.scheme == .https)
        #expect(uri.sha256 == sha)
        #expect(uri.location == "https://h:8/a/spark-3.5.3.tgz?sig=x/y")
        #expect(uri.fileName == "spark-3.5.3.tgz")
        #expect(uri.payloadPlan == .archive)
        #expect(try FetchURI("s3n://b/k.tgz").scheme == .hadoop)
        #expect(try FetchURI("/opt/x%20y.jar").localPath == "/opt/x y.jar")
        #expect(try FetchURI("/opt/x.jar").payloadPlan == .file)
        #expect(try FetchURI("http://h/get?id=1").payloadPlan == .sniff)
        #expect(try FetchURI("http://h/conf.gz").payloadPlan == .gunzip)
        #expect(throws: FetchError.self) { try FetchURI("http://h/x#sha256=abc") }
        #expect(throws: FetchError.self) { try FetchURI("ftp://h/x") }
        #expect(throws: FetchError.self) { try FetchURI("http://h/x", outputFile: "../x") }
        // One name in the directory it is fetched into, whatever the encoding says.
        #expect(try FetchURI("http://h/x/..%2F..%2Ftmp%2Fpwned").fileName == "..%2F..%2Ftmp%2Fpwned")
        #expect(try FetchURI("http://h/x/%2e%2e").fileName == "%2e%2e")
        #expect(try FetchURI("http://h/x/..").fileName == "download")
        #expect(try FetchURI("http://h/a%00b.jar").fileName == "a%00b.jar")
        #expect(try FetchURI("http://h/x%20y.jar").fileName == "x y.jar")
        // A NUL would end a path early.
        #expect(throws: FetchError.self) { try FetchURI("/opt/x.jar\u{0}.txt") }
        #expect(throws: FetchError.self) { try FetchURI("file:///opt/x.jar%00.txt") }
        #expect(throws: FetchError.self) { try FetchURI("http://h/x", outputFile: "x\u{0}") }
        // No request line can carry a space or a control character (curl refuses such a URL too).
        #expect(throws: FetchError.self) { try FetchURI("http://h/my package.tgz") }
        #expect(throws: FetchError.self) { try FetchURI("https://h/x\r\nX-Injected: 1") }
        #expect(try FetchURI("http://h/my%20package.tgz").fileName == "my package.tgz")
        #expect(try FetchURI("/opt/my package.tgz").localPath == "/opt/my package.tgz")
    }
}
