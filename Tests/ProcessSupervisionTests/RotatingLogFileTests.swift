import TemporaryDirectory
import Foundation
import Testing

#if canImport(Glibc)
    import Glibc
#endif

@testable import ProcessSupervision

/// Size-bounded log files (`LogRotation`, `RotatingLogFile`) and a child's output drained into them
/// (`StandardStreamFiles`, `LogDrain`). Moved here from ExecutorCoreTests, assertions unchanged.
struct RotatingLogFileTests {
    /// Runs `body` with a fresh directory, removed afterwards.
    private func withDirectory(_ body: (String) async throws -> Void) async throws {
        try await withTemporaryDirectory(prefix: "log-rotation-", body)
    }

    private func contents(_ path: String) -> String? {
        FileManager.default.contents(atPath: path).map { String(decoding: $0, as: UTF8.self) }
    }

    private func files(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    /// Lines of `width` bytes each, numbered from `first`.
    private func lines(_ range: Range<Int>, width: Int = 100) -> [UInt8] {
        var bytes: [UInt8] = []
        for number in range {
            let head = "line \(number) "
            bytes += Array(head.utf8) + Array(repeating: UInt8(ascii: "x"), count: width - head.utf8.count - 1) + [10]
        }
        return bytes
    }

    @Test func sizesParseAsMesosWritesThem() {
        #expect(LogRotation.parseSize("10MB") == 10 << 20)
        #expect(LogRotation.parseSize("10mb") == 10 << 20)
        #expect(LogRotation.parseSize("4KiB") == 4096)
        #expect(LogRotation.parseSize("1GB") == 1 << 30)
        #expect(LogRotation.parseSize("4096") == 4096)
        #expect(LogRotation.parseSize(" 2 MB ") == 2 << 20)
        #expect(LogRotation.parseSize("1.5MB") == nil)
        #expect(LogRotation.parseSize("MB") == nil)
        #expect(LogRotation.parseSize("10XB") == nil)
        #expect(LogRotation.parseSize("-1MB") == nil)
        #expect(LogRotation.parseSize("99999999999999999999TB") == nil)
        #expect(LogRotation.format(10 << 20) == "10 MiB")
        #expect(
            LogRotation(maximumFileBytes: 1, rotatedFiles: -3) == LogRotation(maximumFileBytes: 4096, rotatedFiles: 0))
    }

    /// The directory may be a task's user's: a link it puts where the live file is is never written
    /// through, at open or at a rotation (which moves the link aside and makes the file new).
    @Test func aLinkInTheLiveFilesPlaceIsNotWrittenThrough() async throws {
        try await withDirectory { directory in
            let target = "\(directory)/elsewhere"
            try #require(FileManager.default.createFile(atPath: target, contents: Data("keep\n".utf8)))
            try #require(symlink(target, "\(directory)/planted") == 0)
            let rotation = LogRotation(maximumFileBytes: 4096, rotatedFiles: 1)
            let error = #expect(throws: ProcessError.self) {
                _ = try RotatingLogFile(path: "\(directory)/planted", rotation: rotation)
            }
            #expect(error?.errno == ELOOP)

            var file = try RotatingLogFile(path: "\(directory)/stdout", rotation: rotation)
            lines(0..<30).withUnsafeBytes { file.append($0) }
            // Before the next rotation makes the live file again, a link takes its place.
            try #require(rename("\(directory)/stdout", "\(directory)/moved") == 0)
            try #require(symlink(target, "\(directory)/stdout") == 0)
            lines(30..<60).withUnsafeBytes { file.append($0) }
            file.close()
            #expect(contents(target) == "keep\n")
            var status = stat()
            #expect(lstat("\(directory)/stdout", &status) == 0 && status.st_mode & S_IFMT == S_IFREG)
            #expect(contents("\(directory)/stdout")?.hasPrefix("line ") == true)
        }
    }

    /// A FIFO (whose writes would stall the drain) or a second name of a file elsewhere in the
    /// live file's place is refused, at once, and the file it names keeps what it held.
    @Test func aFIFOOrAHardLinkInTheLiveFilesPlaceIsRefused() async throws {
        try await withDirectory { directory in
            let rotation = LogRotation(maximumFileBytes: 4096, rotatedFiles: 1)
            try #require(mkfifo("\(directory)/stdout", 0o644) == 0)
            let fifo = #expect(throws: ProcessError.self) {
                _ = try RotatingLogFile(path: "\(directory)/stdout", rotation: rotation)
            }
            #expect(fifo?.errno == EPERM)
            #expect(fifo?.description.contains("not a regular file of its own") == true, "\(String(describing: fifo))")

            let target = "\(directory)/elsewhere"
            try #require(FileManager.default.createFile(atPath: target, contents: Data("keep\n".utf8)))
            try #require(link(target, "\(directory)/stderr") == 0)
            let linked = #expect(throws: ProcessError.self) {
                _ = try RotatingLogFile(path: "\(directory)/stderr", rotation: rotation)
            }
            #expect(linked?.errno == EPERM)
            #expect(contents(target) == "keep\n")
        }
    }

    @Test func filesStayBoundedRotateAtLineEndsAndKeepTheNewestOutput() async throws {
        try await withDirectory { directory in
            let rotation = LogRotation(maximumFileBytes: 4096, rotatedFiles: 2)
            var file = try RotatingLogFile(path: "\(directory)/stdout", rotation: rotation)
            var written: [UInt8] = []
            // Chunks of odd sizes, as reads from a pipe come.
            let all = lines(0..<1000)
            var offset = 0
            var size = 1
            while offset < all.count {
                let end = min(all.count, offset + size)
                all[offset..<end].withUnsafeBytes { file.append($0) }
                written += all[offset..<end]
                offset = end
                size = size * 7 % 5003 + 1
            }
            file.close()
            #expect(files(directory) == ["stdout", "stdout.1", "stdout.2"])
            var kept = ""
            for name in ["stdout.2", "stdout.1", "stdout"] {
                let text = try #require(contents("\(directory)/\(name)"))
                #expect(text.utf8.count <= 4096, "\(name)")
                kept += text
            }
            #expect(String(decoding: written, as: UTF8.self).hasSuffix(kept), "what is kept is the newest output")
            #expect(kept.utf8.count > 4096 * 2, "at least two files' worth is kept")
            #expect(
                try #require(contents("\(directory)/stdout"))
                    .hasSuffix("line 999 " + String(repeating: "x", count: 90) + "\n"))
            for name in ["stdout.1", "stdout.2"] {
                #expect(try #require(contents("\(directory)/\(name)")).hasSuffix("\n"), "\(name) ends at a line end")
            }
            #expect(kept.hasPrefix("line "), "files start with whole lines")
        }
    }

    @Test func aLineBegunInAFullFileMovesToTheNextOne() async throws {
        try await withDirectory { directory in
            var file = try RotatingLogFile(
                path: "\(directory)/stdout", rotation: LogRotation(maximumFileBytes: 4096, rotatedFiles: 1))
            let all = lines(0..<41)  // 4100 bytes
            // 4090 bytes (ending 90 bytes into line 40), then 10 more, which do not fit and hold no line end.
            all[..<4090].withUnsafeBytes { file.append($0) }
            all[4090..<4095].withUnsafeBytes { file.append($0) }
            all[4095...].withUnsafeBytes { file.append($0) }
            file.close()
            #expect(contents("\(directory)/stdout.1") == String(decoding: all[..<4000], as: UTF8.self))
            #expect(contents("\(directory)/stdout") == String(decoding: all[4000...], as: UTF8.self))
        }
    }

    @Test func aLineLongerThanAFileIsCutAndNoRotatedFilesAreKeptWithZero() async throws {
        try await withDirectory { directory in
            var file = try RotatingLogFile(
                path: "\(directory)/stderr", rotation: LogRotation(maximumFileBytes: 4096, rotatedFiles: 0))
            let long = [UInt8](repeating: UInt8(ascii: "a"), count: 10000)
            long.withUnsafeBytes { file.append($0) }
            file.close()
            #expect(files(directory) == ["stderr"])
            #expect(contents("\(directory)/stderr")?.utf8.count == 10000 - 2 * 4096)
        }
    }

    @Test func anExistingFileCountsTowardsTheLimit() async throws {
        try await withDirectory { directory in
            let path = "\(directory)/stdout"
            _ = FileManager.default.createFile(atPath: path, contents: Data(lines(0..<40)))
            var file = try RotatingLogFile(path: path, rotation: LogRotation(maximumFileBytes: 4096, rotatedFiles: 1))
            #expect(file.size == 4000)
            lines(40..<41).withUnsafeBytes { file.append($0) }
            file.close()
            #expect(contents("\(directory)/stdout.1")?.utf8.count == 4000)
            #expect(contents("\(directory)/stdout") == String(decoding: lines(40..<41), as: UTF8.self))
        }
    }

    @Test func aChildsOutputLandsThroughThePipeAndTheStreamEndsAtEOF() async throws {
        try await withDirectory { directory in
            let streams = try StandardStreamFiles(
                directory: directory + "/tasks/t", rotation: LogRotation(maximumFileBytes: 4096, rotatedFiles: 1))
            let child = try ChildProcess.spawn(
                SpawnRequest(
                    executable: "/bin/sh", arguments: ["sh", "-c", "seq 1 5000; echo done >&2"], environment: [],
                    workingDirectory: directory, fileDescriptors: streams.mappings))
            streams.close()
            let termination = await child.wait()
            #expect(termination == .exited(0))
            streams.flush()
            let expected = (1...5000).map { "\($0)\n" }.joined()
            let kept =
                try #require(contents(directory + "/tasks/t/stdout.1"))
                + #require(contents(directory + "/tasks/t/stdout"))
            #expect(expected.hasSuffix(kept))
            #expect(kept.hasSuffix("4999\n5000\n"))
            #expect(contents(directory + "/tasks/t/stderr") == "done\n")
            #expect(!FileManager.default.fileExists(atPath: directory + "/tasks/t/stdout.2"))
        }
    }
}
