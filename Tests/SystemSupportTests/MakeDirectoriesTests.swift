import Foundation
import SystemSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct MakeDirectoriesTests {
    /// The directory asked for gets the mode asked for, whether its parents were there or not;
    /// the parents it had to make are 0755, and one that was there keeps its mode.
    @Test func theDirectoryGetsItsModeAndItsParents0755() throws {
        var template = Array("/tmp/make-directories-XXXXXX".utf8CString)
        let root = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { _ = system("rm -rf '\(root)'") }
        // The process's umask, read without setting it (tests run side by side in one process).
        let status = try String(contentsOfFile: "/proc/self/status", encoding: .utf8)
        let line = try #require(status.split(separator: "\n").first { $0.hasPrefix("Umask:") })
        let mask = try #require(mode_t(line.dropFirst(6).trimmingCharacters(in: .whitespaces), radix: 8))
        func mode(_ path: String) -> mode_t {
            var status = stat()
            return stat(path, &status) == 0 ? status.st_mode & 0o777 : 0
        }
        #expect(makeDirectories(atPath: root + "/a/b/c", mode: 0o750) == nil)
        #expect(
            [mode(root + "/a"), mode(root + "/a/b"), mode(root + "/a/b/c")] == [
                0o755 & ~mask, 0o755 & ~mask, 0o750 & ~mask,
            ])
        #expect(makeDirectories(atPath: root + "/a/b/d", mode: 0o700) == nil)
        #expect(mode(root + "/a/b/d") == 0o700 & ~mask)
        #expect(makeDirectories(atPath: root + "/a/b/c") == nil)
        #expect(mode(root + "/a/b/c") == 0o750 & ~mask)
        #expect(makeDirectories(atPath: root + "/a/e") == nil)
        #expect(mode(root + "/a/e") == 0o755 & ~mask)
    }
}
