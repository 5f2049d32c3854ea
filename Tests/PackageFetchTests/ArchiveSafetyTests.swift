import TemporaryDirectory
import FetchPolicy
import Testing

@testable import PackageFetch

/// Malicious archives are refused before anything lands outside the target, and nothing is installed.
@Suite struct ArchiveSafetyTests {
    static let cases: [(String, TestArchive)] = [
        ("dotdot", TestArchive(entries: [.file("pkg/../../escaped", Array("x".utf8))])),
        ("absolute", TestArchive(entries: [.file("/tmp/package-fetch-escaped-absolute", Array("x".utf8))])),
        ("symlink absolute", TestArchive(entries: [.directory("pkg"), .symlink("pkg/etc", target: "/etc")])),
        ("symlink climbing", TestArchive(entries: [.directory("pkg"), .symlink("pkg/up", target: "../../escaped")])),
        (
            "symlink then write through",
            TestArchive(entries: [.symlink("link", target: "."), .symlink("link/x", target: "../..")])
        ),
        (
            "symlink chain",
            TestArchive(entries: [
                .directory("pkg"), .symlink("pkg/l1", target: ".."), .symlink("pkg/l1/l2", target: "../.."),
                .file("pkg/l1/l2/escaped", Array("x".utf8)),
            ])
        ),
        (
            "file through an inner link",
            TestArchive(entries: [.directory("pkg"), .symlink("pkg/here", target: "."), .file("pkg/here/x", [1])])
        ),
        (
            "hardlink through a link",
            TestArchive(entries: [
                .directory("pkg"), .file("pkg/x", [1]), .symlink("pkg/up", target: ".."),
                .hardlink("pkg/h", target: "pkg/up/pkg/x"),
            ])
        ),
        ("hardlink escape", TestArchive(entries: [.hardlink("pkg/passwd", target: "../../escaped")])),
        ("hardlink absolute", TestArchive(entries: [.hardlink("pkg/passwd", target: "/etc/passwd")])),
        ("bomb by size", TestArchive(entries: [.zeros("pkg/zeros", size: 8 << 20)])),
        ("bomb by count", TestArchive(entries: (0..<300).map { .file("pkg/f\($0)", []) })),
    ]

    @Test(arguments: 0..<cases.count)
    func maliciousArchiveIsRefused(index: Int) async throws {
        let (name, archive) = Self.cases[index]
        let bytes = archive.bytes()
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            let outer = dir + "/outer"
            let sandbox = outer + "/sandbox"
            makeDir(outer)
            makeDir(sandbox)
            let file = dir + "/evil.tgz"
            #expect(writeBytes(file, bytes))
            var configuration = testConfiguration(cache: dir + "/cache")
            configuration.limits = ExtractionLimits(maxBytes: 1 << 20, maxEntries: 100)
            let error = await #expect(throws: FetchError.self, "\(name)") {
                try await PackageFetcher.withFetcher(configuration: configuration, logger: quietLogger) {
                    try await $0.fetch(FetchRequest(package: FetchURI(file)), into: sandbox)
                }
            }
            #expect(error?.isUnsafeArchive == true, "\(name): \(String(describing: error))")
            #expect(error?.description.contains(file) == true)
            #expect(listing(outer) == ["sandbox"], "\(name)")
            #expect(listing(sandbox).isEmpty, "\(name)")
            #expect(listing(dir + "/cache/objects").isEmpty, "\(name)")
            #expect(!exists("/tmp/package-fetch-escaped-absolute"))
            #expect(!exists(dir + "/escaped"))
        }
    }

    /// The chain `pkg/l1 -> ..`, `pkg/l1/l2 -> ../..` passes the name rules one entry at a time; our
    /// own policy refuses the second link, which would be created through the first (libarchive's
    /// secure-symlink flag is only the second line of defence).
    @Test(arguments: [TestArchive.Format.tar, .zip])
    func symlinkChainIsRefusedByOurPolicy(format: TestArchive.Format) async throws {
        let archive = TestArchive(
            entries: [
                .directory("pkg"), .symlink("pkg/l1", target: ".."), .symlink("pkg/l1/l2", target: "../.."),
                .file("pkg/l1/l2/escaped", Array("x".utf8)),
            ], format: format, filter: format == .zip ? .none : .gzip)
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            makeDir(dir + "/sandbox")
            let file = dir + "/chain.\(format == .zip ? "zip" : "tgz")"
            #expect(writeBytes(file, archive.bytes()))
            for cache in [nil, dir + "/cache"] {
                let error = await #expect(throws: FetchError.self) {
                    try await PackageFetcher.withFetcher(
                        configuration: testConfiguration(cache: cache), logger: quietLogger
                    ) {
                        try await $0.fetch(FetchRequest(package: FetchURI(file)), into: dir + "/sandbox")
                    }
                }
                #expect(error?.isUnsafeArchive == true)
                #expect(
                    error?.cause
                        == "refused archive entry 'pkg/l1/l2': it passes through the symbolic link 'pkg/l1' "
                        + "extracted before it; nothing was installed")
                #expect(listing(dir + "/sandbox").isEmpty)
                #expect(listing(dir + "/sandbox/..").filter { $0 != "cache" && $0 != "sandbox" }.count == 1)
                if let cache { #expect(listing(cache + "/objects").isEmpty) }
            }
        }
    }

    /// Links that point through other links inside the package (a JDK's `bin/java -> ../jre/bin/java`
    /// with `jre -> jdk/jre`) are still accepted.
    @Test func linksThroughLinksInsideArePackaged() async throws {
        let archive = TestArchive(entries: [
            .directory("pkg"), .directory("pkg/jdk/jre/bin"), .file("pkg/jdk/jre/bin/java", [1, 2, 3]),
            .symlink("pkg/jre", target: "jdk/jre"), .directory("pkg/bin"),
            .symlink("pkg/bin/java", target: "../jre/bin/java"),
        ])
        try await withTemporaryDirectory(prefix: "package-fetch-test-") { dir in
            makeDir(dir + "/sandbox")
            #expect(writeBytes(dir + "/jdk.tgz", archive.bytes()))
            let package = try await PackageFetcher.withFetcher(
                configuration: testConfiguration(cache: dir + "/cache"), logger: quietLogger
            ) {
                try await $0.fetch(FetchRequest(package: FetchURI(dir + "/jdk.tgz")), into: dir + "/sandbox")
            }
            #expect(package.sparkHome == dir + "/sandbox/pkg")
            #expect(contents(dir + "/sandbox/pkg/bin/java") == [1, 2, 3])
        }
    }

    @Test func extractedLinks() throws {
        var links = ArchivePathPolicy.ExtractedLinks()
        #expect(links.checkSymlink(path: "pkg/l1", target: "..") == nil)
        links.record(path: "pkg/l1", target: "..")
        #expect(links.checkPath("pkg/l1") == nil)
        #expect(links.checkPath("pkg/l1x/a") == nil)
        #expect(
            links.checkPath("pkg/l1/l2")?.reason == "it passes through the symbolic link 'pkg/l1' extracted before it")
        #expect(links.checkSymlink(path: "pkg/l1/l2", target: "../..") != nil)
        #expect(links.checkHardlinkTarget("pkg/l1/pkg/x") != nil)
        #expect(links.checkHardlinkTarget("pkg/x") == nil)
        // Resolution follows recorded links, whatever the static rules would have let through.
        links.record(path: "a", target: "../..")
        #expect(throws: ArchivePathPolicy.Refusal.self) { try links.resolve("a/x", from: []).get() }
        #expect(throws: ArchivePathPolicy.Refusal.self) { try links.resolve("pkg/l1/..", from: []).get() }
        #expect(try links.resolve("pkg/l1/c", from: []).get() == ["c"])
        #expect(try links.resolve("../l1/./d", from: ["pkg", "e"]).get() == ["d"])
        links.record(path: "loop", target: "loop")
        #expect(throws: ArchivePathPolicy.Refusal.self) { try links.resolve("loop/x", from: []).get() }
        links.record(path: "abs", target: "/etc")
        #expect(throws: ArchivePathPolicy.Refusal.self) { try links.resolve("abs", from: []).get() }
    }

    @Test func pathPolicy() throws {
        #expect(try ArchivePathPolicy.relativePath("./a//b/./c").get() == "a/b/c")
        #expect(throws: ArchivePathPolicy.Refusal.self) { try ArchivePathPolicy.relativePath("a/../b").get() }
        #expect(throws: ArchivePathPolicy.Refusal.self) { try ArchivePathPolicy.relativePath("/a").get() }
        #expect(ArchivePathPolicy.checkSymlink(path: "a/b/link", target: "../../x") == nil)
        #expect(ArchivePathPolicy.checkSymlink(path: "a/b/link", target: "../../../x") != nil)
        #expect(ArchivePathPolicy.checkSymlink(path: "a/link", target: "b/../../x") != nil)
        #expect(ArchivePathPolicy.checkSymlink(path: "link", target: "/etc") != nil)
        #expect(ArchivePathPolicy.checkSymlink(path: "link", target: "lib/x.jar") == nil)
    }
}
