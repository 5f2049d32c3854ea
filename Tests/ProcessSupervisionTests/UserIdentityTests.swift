import ProcessSupervision
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Giving a directory tree to a user (run as root, as CI runs): everything in it changes owner,
/// nothing outside it does, whatever links inside point to.
@Suite(.enabled(if: geteuid() == 0, "changing owners needs root"))
struct UserIdentityTests {
    private func owner(_ path: String) -> uid_t? {
        var status = stat()
        return lstat(path, &status) == 0 ? status.st_uid : nil
    }

    @Test func aTreeIsGivenAwayAndNothingItLinksTo() throws {
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        var template = Array("/tmp/user-identity-XXXXXX".utf8CString)
        let root = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { _ = system("rm -rf '\(root)'") }
        let tree = root + "/tree"
        let outside = root + "/outside"
        try #require(mkdir(tree, 0o755) == 0 && mkdir(outside, 0o755) == 0)
        try #require(mkdir(tree + "/nested", 0o755) == 0)
        for file in [tree + "/nested/file", outside + "/secret", outside + "/linked"] {
            let fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
            try #require(fd >= 0)
            close(fd)
        }
        // A link to a directory outside, one to a file outside, and a second name of a file outside.
        try #require(symlink(outside, tree + "/to-outside") == 0)
        try #require(symlink(outside + "/secret", tree + "/to-secret") == 0)
        try #require(link(outside + "/linked", tree + "/hard-linked") == 0)

        try nobody.takeOwnership(ofDirectory: tree)

        for mine in [tree, tree + "/nested", tree + "/nested/file", tree + "/to-outside", tree + "/to-secret"] {
            #expect(owner(mine) == nobody.uid, "\(mine)")
        }
        for untouched in [outside, outside + "/secret", outside + "/linked", tree + "/hard-linked"] {
            #expect(owner(untouched) == 0, "\(untouched)")
        }
        // A link in the tree's place is not followed either.
        try #require(symlink(outside, root + "/link-to-outside") == 0)
        let error = #expect(throws: ProcessError.self) {
            try nobody.takeOwnership(ofDirectory: root + "/link-to-outside")
        }
        #expect(error?.errno == ELOOP || error?.errno == ENOTDIR)
        #expect(owner(outside) == 0)
    }

    /// Opening as a user checks that user's permissions, on the calling thread only and for the
    /// open alone: the thread is itself again right after (the same file opens for it at once).
    @Test func aFileOpensAsTheUserWouldOpenIt() throws {
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        var template = Array("/tmp/user-identity-XXXXXX".utf8CString)
        let root = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { _ = system("rm -rf '\(root)'") }
        try #require(chmod(root, 0o755) == 0)
        for (name, mode) in [("public", 0o644), ("secret", 0o600)] {
            let fd = open(root + "/" + name, O_WRONLY | O_CREAT | O_CLOEXEC, mode_t(mode))
            try #require(fd >= 0 && fchmod(fd, mode_t(mode)) == 0)
            close(fd)
        }
        let publicFile = nobody.open(root + "/public", flags: O_RDONLY | O_CLOEXEC)
        #expect(publicFile >= 0)
        close(publicFile)
        let secret = nobody.open(root + "/secret", flags: O_RDONLY | O_CLOEXEC)
        let code = errno
        #expect(secret == -1 && code == EACCES)
        let own = open(root + "/secret", O_RDONLY | O_CLOEXEC)
        #expect(own >= 0, "the thread's own permissions are back")
        close(own)
        #expect(nobody.open(root + "/made", flags: O_WRONLY | O_CREAT | O_CLOEXEC, mode: 0o644) == -1)
    }
}
