import Testing

@testable import ProcessSupervision

#if canImport(Glibc)
    import Glibc
#endif

/// The POSIX ACL a task's user is let through a directory with.
@Suite struct AccessControlListTests {
    typealias Entry = AccessControlList.Entry
    typealias Tag = AccessControlList.Tag
    let none = AccessControlList.undefinedID

    /// A directory with no ACL (0750): the user's entry and a mask of what the group had, so the
    /// mode reads as it did; granting again changes nothing; the attribute's bytes read back.
    @Test func aUserEntryAndItsMaskAreAddedToWhatTheModeSays() throws {
        var acl = AccessControlList(mode: 0o750)
        let added = acl.grantSearch(toUser: 65534)
        #expect(added)
        #expect(
            acl.entries == [
                Entry(tag: Tag.userObject, permissions: 7, id: none), Entry(tag: Tag.user, permissions: 1, id: 65534),
                Entry(tag: Tag.groupObject, permissions: 5, id: none), Entry(tag: Tag.mask, permissions: 5, id: none),
                Entry(tag: Tag.other, permissions: 0, id: none),
            ])
        let addedAgain = acl.grantSearch(toUser: 65534)
        #expect(!addedAgain)
        #expect(AccessControlList(bytes: acl.bytes) == acl)
        #expect(Array(acl.bytes.prefix(12)) == [2, 0, 0, 0, 1, 0, 7, 0, 0xFF, 0xFF, 0xFF, 0xFF])
        #expect(AccessControlList(bytes: [3, 0, 0, 0]) == nil && AccessControlList(bytes: [2, 0, 0, 0, 1]) == nil)
    }

    /// An ACL already there keeps its entries; a user's entry without `x`, or a mask without it,
    /// gains it; users stay sorted by id.
    @Test func anACLAlreadyThereGainsSearchWhereItLacksIt() throws {
        var acl = AccessControlList(mode: 0o700)
        let first = acl.grantSearch(toUser: 2000)
        #expect(first)
        #expect(acl.entries.first { $0.tag == Tag.mask }?.permissions == 1)
        let second = acl.grantSearch(toUser: 1000)
        #expect(second)
        #expect(acl.entries.filter { $0.tag == Tag.user }.map(\.id) == [1000, 2000])
        var bytes = acl.bytes
        // The mask (the fifth entry) as `chmod g-x` would leave it: `r--`.
        let mask = 4 + 8 * 4
        #expect(bytes[mask] == 0x10)
        bytes[mask + 2] = 4
        var narrowed = try #require(AccessControlList(bytes: bytes))
        let widened = narrowed.grantSearch(toUser: 1000)
        #expect(widened)
        #expect(narrowed.entries.first { $0.tag == Tag.mask }?.permissions == 5)
    }
}

/// Run as root (as CI runs): the user passes through a directory closed to others, and no
/// other user does.
@Suite(.enabled(if: geteuid() == 0, "opening as another user needs root"))
struct DirectoryPassageTests {
    @Test func onlyTheUserGrantedPassesThrough() throws {
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        let daemon = try #require(try UserIdentity.lookUp("daemon"))
        var template = Array("/tmp/directory-passage-XXXXXX".utf8CString)
        let closed = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { _ = system("rm -rf '\(closed)'") }
        try #require(chmod(closed, 0o750) == 0 && mkdir(closed + "/open", 0o755) == 0)
        let file = closed + "/open/file"
        let made = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        try #require(made >= 0)
        close(made)
        #expect(nobody.open(file, flags: O_RDONLY | O_CLOEXEC) == -1 && errno == EACCES)

        let granted = try nobody.grantPassage(through: closed)
        var status = stat()
        #expect(stat(closed, &status) == 0)
        if granted {
            #expect(status.st_mode & 0o777 == 0o750, "no other user's bit changed")
            let fd = nobody.open(file, flags: O_RDONLY | O_CLOEXEC)
            #expect(fd >= 0)
            if fd >= 0 { close(fd) }
            #expect(daemon.open(file, flags: O_RDONLY | O_CLOEXEC) == -1 && errno == EACCES)
            #expect(try nobody.grantPassage(through: closed))
        } else {
            // A file system without ACLs: nothing changed; the caller lets others through instead.
            #expect(status.st_mode & 0o777 == 0o750)
        }
        #expect(throws: ProcessError.self) { try nobody.grantPassage(through: closed + "/missing") }
    }
}
