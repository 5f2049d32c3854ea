import Foundation
import Testing

@testable import Isolation

#if canImport(Glibc)
    import Glibc
#endif

/// Reading a control file whole, through the stack buffer and past it, on ordinary files of every
/// size around the buffer's (a cgroupfs file behaves the same way for a `pread` at any offset).
@Suite struct CgroupFilesTests {
    @Test(arguments: [0, 7, 1023, 1024, 1025, 3000])
    func aFileIsReadWholeWhateverItsSize(size: Int) throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("cgroup-file-\(getpid())-\(size)").path
        let text = String((0..<size).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
        try text.write(toFile: path, atomically: false, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        try #require(fd >= 0)
        defer { close(fd) }
        #expect(CgroupFiles.read(descriptor: fd) == text)
        // A single record shorter than the buffer ends with its first read; longer, it is read on.
        #expect(CgroupFiles.read(descriptor: fd, singleRecord: true) == text)
        #expect(CgroupFiles.read(path) == text)
    }

    @Test func aDescriptorThatCannotBeReadIsNil() {
        #expect(CgroupFiles.read(descriptor: -1) == nil)
        #expect(CgroupFiles.read("/nonexistent/cgroup.procs") == nil)
    }
}
