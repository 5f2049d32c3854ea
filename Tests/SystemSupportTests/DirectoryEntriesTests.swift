import Foundation
import SystemSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct DirectoryEntriesTests {
    /// Every name but `.` and `..`, with its type; a name that is not UTF-8 still names its file
    /// in a system call; a directory open by descriptor lists the same twice (it is read from its
    /// start each time) and stays open.
    @Test func aDirectoryListsItsNamesAsTheKernelHoldsThem() throws {
        var template = Array("/tmp/directory-entries-XXXXXX".utf8CString)
        let root = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { _ = system("rm -rf '\(root)'") }
        #expect(mkdir(root + "/sub", 0o755) == 0)
        #expect(symlink("/", root + "/link") == 0)
        #expect(FileManager.default.createFile(atPath: root + "/file", contents: Data("x".utf8)))
        // "caf\xe9": Latin-1, not UTF-8.
        let latin1: [CChar] = Array((root + "/caf").utf8CString.dropLast()) + [CChar(bitPattern: 0xE9), 0]
        let fd = open(latin1, O_CREAT | O_WRONLY | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        close(fd)

        let entries = try #require(directoryEntries(atPath: root)).sorted { $0.name < $1.name }
        #expect(entries.map(\.name) == ["caf\u{FFFD}", "file", "link", "sub"])
        #expect(entries.map(\.isDirectory) == [false, false, false, true])
        #expect(entries[2].type == UInt8(DT_LNK) && entries[1].type == UInt8(DT_REG))
        var status = stat()
        #expect(entries[0].withCName { lstat($0, &status) } == -1)  // a relative name: not from here
        let directory = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        defer { close(directory) }
        #expect(entries[0].withCName { fstatat(directory, $0, &status, 0) } == 0)
        #expect(entries[0].withCName { unlinkat(directory, $0, 0) } == 0)

        let first = try #require(directoryEntries(fd: directory)).map(\.name).sorted()
        let second = try #require(directoryEntries(fd: directory)).map(\.name).sorted()
        #expect(first == ["file", "link", "sub"] && second == first)
        #expect(fcntl(directory, F_GETFD) != -1)
        #expect(directoryEntries(atPath: root + "/missing") == nil && errno == ENOENT)
    }
}
