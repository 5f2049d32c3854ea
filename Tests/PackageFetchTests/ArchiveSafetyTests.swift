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
        ("hardlink escape", TestArchive(entries: [.hardlink("pkg/passwd", target: "../../escaped")])),
        ("hardlink absolute", TestArchive(entries: [.hardlink("pkg/passwd", target: "/etc/passwd")])),
        ("bomb by size", TestArchive(entries: [.zeros("pkg/zeros", size: 8 << 20)])),
        ("bomb by count", TestArchive(entries: (0..<300).map { .file("pkg/f\($0)", []) })),
    ]

    @Test(arguments: 0..<cases.count)
    func maliciousArchiveIsRefused(index: Int) async throws {
        let (name, archive) = Self.cases[index]
        let bytes = archive.bytes()
        try await withTemporaryDirectory { dir in
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
