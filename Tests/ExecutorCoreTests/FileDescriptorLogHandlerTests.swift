import ExecutorCore
import Foundation
import Logging
import SystemSupport
import Testing

struct FileDescriptorLogHandlerTests {
    /// What `StreamLogHandler` writes, collected.
    final class Collected: TextOutputStream, @unchecked Sendable {
        private let text = LockedValue("")
        var value: String { text.withLock { $0 } }
        func write(_ string: String) { text.withLock { $0 += string } }
    }

    struct Failure: Error, CustomStringConvertible {
        var description: String { "the disk is full" }
    }

    /// A file that a handler writes to, read back.
    final class LogFile {
        let path = NSTemporaryDirectory() + "sme-log-" + UUID().uuidString
        let descriptor: Int32

        init() { descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644) }
        deinit {
            close(descriptor)
            unlink(path)
        }
        var text: String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    }

    static let events: [LogEvent] = [
        LogEvent(
            level: .info, message: "launch", metadata: ["task": "t1", "b": "3"], source: "ExecutorCore",
            file: #fileID, function: #function, line: #line),
        LogEvent(
            level: .warning, message: "no metadata", metadata: nil, source: "Run", file: #fileID,
            function: #function, line: #line),
        LogEvent(
            level: .error, message: "cannot write", error: Failure(), metadata: [:], source: "PackageFetch",
            file: #fileID, function: #function, line: #line),
        LogEvent(
            level: .notice, message: "a list and a map", metadata: ["list": ["1", "2"], "map": ["k": "v"]],
            source: "X", file: #fileID, function: #function, line: #line),
    ]

    /// Every record reads as `StreamLogHandler` would write it, line for line: same timestamp format,
    /// level, label, metadata (the handler's merged with the record's, sorted by key), source and
    /// message, errors included.
    @Test(arguments: 0..<events.count)
    func writesWhatStreamLogHandlerWrites(_ index: Int) throws {
        let event = Self.events[index]
        // The two timestamps must fall in the same second: try again if the second turned between them.
        for _ in 0..<5 {
            let file = LogFile()
            var ours = FileDescriptorLogHandler(label: "spark-mesos-executor", descriptor: file.descriptor)
            ours.metadata = ["b": "2", "handler": "yes"]
            let collected = Collected()
            var theirs = StreamLogHandler(label: "spark-mesos-executor", stream: collected)
            theirs.metadata = ["b": "2", "handler": "yes"]
            ours.log(event: event)
            theirs.log(event: event)
            guard file.text.prefix(24) == collected.value.prefix(24) else { continue }
            #expect(file.text == collected.value)
            #expect(file.text.hasSuffix("\n") && file.text.filter { $0 == "\n" }.count == 1)
            return
        }
        Issue.record("the second turned between the two handlers five times in a row")
    }

    @Test func recordsBelowTheLevelAreNotWrittenAndAnEmptyLabelLeavesNoGap() {
        let file = LogFile()
        var logger = Logger(label: "") { FileDescriptorLogHandler(label: $0, descriptor: file.descriptor) }
        logger.logLevel = .info
        logger.debug("hidden")
        logger.info("shown")
        let text = file.text
        #expect(!text.contains("hidden"))
        #expect(text.hasSuffix(" info: [ExecutorCoreTests] shown\n"), "\(text)")
    }

    /// Threads logging at once leave whole lines, however long.
    @Test func linesFromManyThreadsDoNotInterleave() async {
        let file = LogFile()
        let handler = FileDescriptorLogHandler(label: "l", descriptor: file.descriptor)
        let long = String(repeating: "x", count: 70_000)
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<8 {
                group.addTask {
                    for line in 0..<20 {
                        handler.log(
                            event: LogEvent(
                                level: .info, message: "\(task)-\(line) \(long)", metadata: nil, source: "S",
                                file: #fileID, function: #function, line: #line))
                    }
                }
            }
        }
        let lines = file.text.split(separator: "\n")
        #expect(lines.count == 160)
        #expect(lines.allSatisfy { $0.hasSuffix(long) && $0.contains(" info l: [S] ") })
    }
}
