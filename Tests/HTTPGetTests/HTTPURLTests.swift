import Testing

@testable import HTTPGet

@Suite struct HTTPURLTests {
    @Test func urlsAreTakenApart() throws {
        let plain = try #require(HTTPURL("http://example.com/spark.tgz?token=a#sha256=00"))
        #expect(!plain.secure && plain.host == "example.com" && plain.port == 80)
        #expect(plain.target == "/spark.tgz?token=a")
        #expect(plain.hostHeader == "example.com")
        #expect(plain.description == "http://example.com/spark.tgz?token=a")

        let secure = try #require(HTTPURL("HTTPS://repo.example.com:8443"))
        #expect(secure.secure && secure.port == 8443 && secure.target == "/")
        #expect(secure.hostHeader == "repo.example.com:8443")
        #expect(try #require(HTTPURL("https://h/x")).port == 443)

        let v6 = try #require(HTTPURL("http://[::1]:5050?x=1"))
        #expect(v6.host == "::1" && v6.port == 5050 && v6.target == "/?x=1")
        #expect(v6.hostHeader == "[::1]:5050" && v6.hostIsAddress)
        #expect(try #require(HTTPURL("http://[fe80::1]/")).port == 80)

        let withCredentials = try #require(HTTPURL("http://user:p@ss@10.0.0.1:81/a"))
        #expect(withCredentials.credentials == "user:p@ss" && withCredentials.host == "10.0.0.1")
        #expect(withCredentials.hostIsAddress && !plain.hostIsAddress)
    }

    @Test(arguments: [
        "ftp://example.com/a", "example.com/a", "http://", "http:///a", "http://host:0/", "http://host:65536/",
        "http://host:port/", "http://[::1/", "http://[::1]x/", "hdfs://nn/a",
    ])
    func otherTextIsNoURL(text: String) {
        #expect(HTTPURL(text) == nil)
    }

    @Test func redirectLocationsResolveAgainstTheURL() throws {
        let base = try #require(HTTPURL("https://user:pw@repo:8443/dist/spark/pkg.tgz?sig=1"))
        #expect(base.resolving("http://mirror/x.tgz")?.description == "http://mirror/x.tgz")
        #expect(base.resolving("//mirror/x.tgz")?.description == "https://mirror/x.tgz")
        #expect(base.resolving("/other/x.tgz")?.description == "https://repo:8443/other/x.tgz")
        #expect(base.resolving("x.tgz?a=b")?.description == "https://repo:8443/dist/spark/x.tgz?a=b")
        #expect(base.resolving("../../up.tgz")?.description == "https://repo:8443/up.tgz")
        #expect(base.resolving("./here/../there.tgz#frag")?.description == "https://repo:8443/dist/spark/there.tgz")
        #expect(base.resolving("?sig=2")?.description == "https://repo:8443/dist/spark/pkg.tgz?sig=2")
        #expect(base.resolving("../../../../above.tgz")?.description == "https://repo:8443/above.tgz")
        // Credentials are not carried to where a redirect points.
        #expect(base.resolving("/other")?.credentials == nil)
        #expect(base.resolving("ftp://elsewhere/") == nil)
    }

    @Test func dotSegmentsAreRemoved() {
        #expect(HTTPURL.removingDotSegments("/a/b/../c/./d") == "/a/c/d")
        #expect(HTTPURL.removingDotSegments("/a/b/..") == "/a/")
        #expect(HTTPURL.removingDotSegments("/a/.") == "/a/")
        #expect(HTTPURL.removingDotSegments("/../x?q=/../") == "/x?q=/../")
        #expect(HTTPURL.removingDotSegments("/") == "/")
    }
}
