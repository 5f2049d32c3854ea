import Foundation
import Testing

@testable import PackageFetch

#if canImport(Glibc)
    import Glibc
#endif

/// `removeTree`: rm -rf of what an archive may leave, never through a link.
@Suite struct RemoveTreeTests {
    private let base: String

    init() throws {
        var template = Array("/tmp/remove-tree-XXXXXX".utf8CString)
        base = try #require(mkdtemp(&template).map { String(cString: $0) })
    }

    /// The whole tree goes — read-only and closed directories, a name that is not UTF-8, links —
    /// and nothing a link points to: neither a directory outside nor its files.
    @Test func everythingGoesButWhatLinksPointTo() throws {
        defer { _ = system("chmod -R u+rwx '\(base)'; rm -rf '\(base)'") }
        let outside = base + "/outside"
        let tree = base + "/tree"
        for directory in [outside, tree, tree + "/a", tree + "/a/read-only", tree + "/a/closed"] {
            #expect(mkdir(directory, 0o755) == 0)
        }
        for file in [outside + "/keep", tree + "/a/read-only/f", tree + "/a/closed/f", tree + "/top"] {
            #expect(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
        }
        let latin1: [CChar] = Array((tree + "/a/caf").utf8CString.dropLast()) + [CChar(bitPattern: 0xE9), 0]
        let fd = open(latin1, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        close(fd)
        #expect(symlink(outside, tree + "/a/to-outside") == 0)
        #expect(symlink(outside + "/keep", tree + "/to-file") == 0)
        #expect(chmod(tree + "/a/read-only", 0o555) == 0)
        #expect(chmod(tree + "/a/closed", 0) == 0)

        removeTree(tree)
        #expect(!exists(tree))
        #expect(exists(outside + "/keep") && fileMode(outside) == 0o755)

        // A link given as the tree is removed as the link.
        #expect(symlink(outside, base + "/link") == 0)
        removeTree(base + "/link")
        #expect(!exists(base + "/link") && exists(outside + "/keep"))
        removeTree(outside + "/keep")
        #expect(!exists(outside + "/keep"))
        removeTree(base + "/missing")
    }

    /// Not root (root passes every permission check): a directory closed to its owner is opened
    /// to it first.
    @Test(.enabled(if: geteuid() != 0, "root reads a closed directory anyway"))
    func aDirectoryClosedToItsOwnerIsOpenedFirst() throws {
        defer { _ = system("chmod -R u+rwx '\(base)'; rm -rf '\(base)'") }
        #expect(mkdir(base + "/tree", 0o755) == 0 && mkdir(base + "/tree/closed", 0o755) == 0)
        #expect(FileManager.default.createFile(atPath: base + "/tree/closed/f", contents: Data("x".utf8)))
        #expect(chmod(base + "/tree/closed", 0) == 0 && chmod(base + "/tree", 0o500) == 0)
        removeTree(base + "/tree")
        #expect(!exists(base + "/tree"))
    }
}
