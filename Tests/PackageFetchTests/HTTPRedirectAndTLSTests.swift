import TemporaryDirectory
import FetchPolicy
import Testing
import TestCertificates

@testable import PackageFetch

/// The fetcher's HTTP client beyond a plain download: redirects of every kind, credentials in the
/// URL, and https with a certificate the system does not trust.
@Suite struct HTTPRedirectAndTLSTests {
    let archive = TestArchive.sparkLike().bytes()

    private func fetch(_ url: String, _ dir: String, maxRedirects: Int = 10) async throws -> FetchedPackage {
        makeDir(dir)
        makeDir(dir + "/sandbox")
        var configuration = testConfiguration(cache: nil, attempts: 1)
        configuration.maxRedirects = maxRedirects
        return try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
            try await $0.fetch(FetchRequest(package: FetchURI(url)), into: dir + "/sandbox")
        }
    }

    /// A `Location` may be an absolute path, a path relative to the redirecting one or a whole URL.
    @Test func relativeAndAbsoluteLocationsAreFollowed() async throws {
        try await FileServer.with { server in
            server.serve("/real/spark.tgz", archive)
            server.redirect("/start/spark.tgz", to: "../hop/./spark.tgz")
            server.redirect("/hop/spark.tgz", to: "/last/spark.tgz")
            server.redirect("/last/spark.tgz", to: server.url("/real/spark.tgz"))
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let package = try await fetch(server.url("/start/spark.tgz"), dir)
                #expect(package.sparkHome == dir + "/sandbox/spark-3.5.3-bin-hadoop3")
                #expect(server.requests("/hop/spark.tgz") == 1)
                #expect(server.requests("/last/spark.tgz") == 1)
                #expect(server.requests("/real/spark.tgz") == 1)
            }
        }
    }

    @Test func aRedirectLoopFailsNamingWhereItLooped() async throws {
        try await FileServer.with { server in
            server.redirect("/a.tgz", to: "/b.tgz")
            server.redirect("/b.tgz", to: "/a.tgz")
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let error = await #expect(throws: FetchError.self) { try await fetch(server.url("/a.tgz"), dir) }
                #expect(error?.description.contains("redirect loop at \(server.url("/a.tgz"))") == true)
                #expect(server.requests("/a.tgz") == 1)
                #expect(server.requests("/b.tgz") == 1)
                #expect(listing(dir + "/sandbox").isEmpty)
            }
        }
    }

    /// A redirect to a URL no request line can carry (a space in its path) fails the fetch at
    /// once, saying why: asking again would not help, so it is not retried.
    @Test func aRedirectToAnUnsendableURLFailsAtOnce() async throws {
        try await FileServer.with { server in
            server.redirect("/spark.tgz", to: "/my spark.tgz")
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                makeDir(dir + "/sandbox")
                let error = await #expect(throws: FetchError.self) {
                    try await PackageFetcher.withFetcher(
                        configuration: testConfiguration(cache: nil, attempts: 4), logger: quietLogger
                    ) {
                        try await $0.fetch(
                            FetchRequest(package: FetchURI(server.url("/spark.tgz"))), into: dir + "/sandbox")
                    }
                }
                #expect(
                    error?.description.contains(#"the URL's path "/my spark.tgz" holds a space or a control character"#)
                        == true, "\(error?.description ?? "")")
                #expect(error?.isTransient == false)
                #expect(server.requests("/spark.tgz") == 1)
            }
        }
    }

    @Test func redirectsBeyondTheLimitFail() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            for hop in 0..<3 { server.redirect("/hop\(hop)", to: hop == 2 ? "/spark.tgz" : "/hop\(hop + 1)") }
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                let error = await #expect(throws: FetchError.self) {
                    try await fetch(server.url("/hop0"), dir + "/short", maxRedirects: 2)
                }
                #expect(error?.description.contains("more than 2 redirects") == true)
                #expect(server.requests("/spark.tgz") == 0)
                let package = try await fetch(server.url("/hop0"), dir + "/enough", maxRedirects: 3)
                #expect(package.items[0].extracted)
            }
        }
    }

    /// `user:password@` in the URL is sent as basic authentication.
    @Test func credentialsInTheURLAreSentAsBasicAuthentication() async throws {
        try await FileServer.with { server in
            server.serve("/spark.tgz", archive)
            try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
                _ = try await fetch("http://spark:s3cret@127.0.0.1:\(server.port)/spark.tgz", dir)
                // base64("spark:s3cret")
                #expect(server.authorizations("/spark.tgz") == ["Basic c3Bhcms6czNjcmV0"])
                // Errors (and so logs) show the user, never the password.
                let error = await #expect(throws: FetchError.self) {
                    try await fetch("http://spark:s3cret@127.0.0.1:\(server.port)/missing.tgz", dir + "/missing")
                }
                #expect(error?.description.hasPrefix("cannot fetch http://spark:***@127.0.0.1:") == true)
                #expect(error?.description.contains("s3cret") == false, "\(String(describing: error))")
            }
        }
    }

    /// https is TLS with the server's certificate verified: a self-signed one is refused, and
    /// nothing is installed.
    @Test(.enabled(if: SelfSignedCertificate.canBeMade, "openssl not installed"))
    func anUntrustedCertificateIsRefused() async throws {
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            let tls = try await SelfSignedCertificate(in: dir).serverContext()
            try await FileServer.with(tls: tls) { server in
                server.serve("/spark.tgz", archive)
                let error = await #expect(throws: FetchError.self) { try await fetch(server.url("/spark.tgz"), dir) }
                #expect(error?.description.hasPrefix("cannot fetch https://127.0.0.1:") == true)
                #expect(
                    error?.description.contains("certificate") == true
                        || error?.description.contains("CERTIFICATE") == true, "\(String(describing: error))")
                #expect(server.requests("/spark.tgz") == 0)
                #expect(listing(dir + "/sandbox").isEmpty)
            }
        }
    }
}
