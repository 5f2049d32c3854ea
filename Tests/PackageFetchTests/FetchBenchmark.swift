import TemporaryDirectory
import FetchPolicy
import Testing

@testable import PackageFetch
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// A Spark-sized cold fetch next to `curl | tar xz` of the same file from the same loopback server,
/// and a cache hit. Runs only with FETCH_BENCHMARK=1; prints figures, asserts no timing.
@Suite struct FetchBenchmark {
    @Test(.enabled(if: getenv("FETCH_BENCHMARK") != nil))
    func sparkSizedPackage() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            let tarball = try await makeSparkLikeTarball(in: dir)
            let bytes = try #require(readBytes(tarball))
            let sha = sha256Hex(bytes)
            print("benchmark: package \(bytes.count) bytes, sha256 \(sha)")
            try await FileServer.with { server in
                server.serve("/spark.tgz", bytes)
                let url = server.url("/spark.tgz")
                let clock = ContinuousClock()
                var curl: [Duration] = []
                var cold: [Duration] = []
                var direct: [Duration] = []
                var hits: [Duration] = []
                for round in 0..<3 {
                    let out = dir + "/curl\(round)"
                    makeDir(out)
                    curl.append(try await clock.measure { _ = try await shell("curl -s \(url) | tar xzf - -C \(out)") })
                    removeTree(out)

                    let cache = dir + "/cache\(round)"
                    let sandbox = dir + "/sandbox\(round)"
                    makeDir(sandbox)
                    let configuration = testConfiguration(cache: cache)
                    let uri = try FetchURI(url + "#sha256=" + sha)
                    cold.append(
                        try await clock.measure {
                            _ = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger)
                            {
                                try await $0.fetch(FetchRequest(package: uri), into: sandbox)
                            }
                        })
                    let hitSandbox = dir + "/hit\(round)"
                    makeDir(hitSandbox)
                    let hit = try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                        try await $0.fetch(FetchRequest(package: uri), into: hitSandbox)
                    }
                    precondition(hit.allCacheHits)
                    hits.append(hit.duration)
                    removeTree(hitSandbox)
                    removeTree(sandbox)
                    removeTree(cache)

                    let plain = dir + "/direct\(round)"
                    makeDir(plain)
                    let noCache = testConfiguration(cache: nil)
                    direct.append(
                        try await clock.measure {
                            _ = try await PackageFetcher.withFetcher(configuration: noCache, logger: quietLogger) {
                                try await $0.fetch(FetchRequest(package: uri), into: plain)
                            }
                        })
                    removeTree(plain)
                }
                func ms(_ d: Duration) -> String { String(Int((d.seconds * 1000).rounded())) + " ms" }
                for round in 0..<curl.count {
                    print(
                        "benchmark round \(round): curl|tar xz \(ms(curl[round])), cold fetch+verify+extract+publish "
                            + "\(ms(cold[round])) (ratio \(String(cold[round].seconds / curl[round].seconds).prefix(4))), "
                            + "no-cache fetch \(ms(direct[round])), cache hit \(ms(hits[round]))")
                }
            }
        }
    }

    /// ~250 incompressible "jars" (≈325 MB) and ≈950 small text files, packed by GNU tar + gzip.
    private func makeSparkLikeTarball(in dir: String) async throws -> String {
        let top = dir + "/tree/spark-3.5.3-bin-hadoop3"
        for sub in ["", "/jars", "/bin", "/python", "/python/pyspark", "/examples", "/licenses", "/data"] {
            makeDirectories(top + sub).map { fatalError($0.description) }
        }
        let random = open("/dev/urandom", O_RDONLY)
        defer { close(random) }
        var buffer = [UInt8](repeating: 0, count: 1_300_000)
        for index in 0..<250 {
            _ = read(random, &buffer, buffer.count)
            _ = writeBytes(top + "/jars/lib-\(index).jar", buffer)
        }
        let text = Array(
            String(repeating: "Licensed to the Apache Software Foundation (ASF) under one or more\n", count: 160).utf8)
        for index in 0..<950 {
            let sub = ["/python/pyspark", "/examples", "/licenses", "/data", "/bin"][index % 5]
            _ = writeBytes(top + sub + "/file-\(index).txt", text + Array("\(index)\n".utf8))
        }
        let tarball = dir + "/spark.tgz"
        let status = try await shell("tar czf \(tarball) -C \(dir)/tree spark-3.5.3-bin-hadoop3")
        precondition(status == .exited(0), "tar failed: \(status)")
        removeTree(dir + "/tree")
        return tarball
    }
}

/// Runs `/bin/sh -c command` (its standard error is ours) and waits for it.
func shell(_ command: String) async throws -> Termination {
    try await ChildProcess.spawn(
        SpawnRequest(
            executable: "/bin/sh", arguments: ["sh", "-c", command], environment: ["PATH=/usr/bin:/bin"],
            fileDescriptors: [(2, 2)])
    ).wait()
}
