public import Logging
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The executor's log: every record one line on a file descriptor (standard error, which the agent
/// keeps as the sandbox's `stderr`), in the format of swift-log's `StreamLogHandler`:
///
///     2026-12-01T14:42:46+0000 info spark-mesos-executor: task=t1 [ExecutorCore] launch
///
/// Written with one `write(2)`, and cheaper than `StreamLogHandler`, whose every line costs a
/// `stat` of `/etc/localtime` (glibc's `localtime` re-checks the zone file when `TZ` is unset, as
/// it is under an agent) and a pass through stdio. An executor logs about five lines per task at
/// the default level, two of them between LAUNCH and TASK_RUNNING (Tests/Benchmarks/HISTORY.md).
public struct FileDescriptorLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    public var metadataProvider: Logger.MetadataProvider?
    private let label: String
    private let output: Output

    /// Lines go to `descriptor`, which stays open for the life of the handler (and of its copies).
    public init(label: String, descriptor: Int32, metadataProvider: Logger.MetadataProvider? = nil) {
        self.label = label
        self.output = Output(descriptor: descriptor)
        self.metadataProvider = metadataProvider
    }

    /// The process's standard error.
    public static func standardError(label: String) -> FileDescriptorLogHandler {
        FileDescriptorLogHandler(label: label, descriptor: STDERR_FILENO)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let provided = metadataProvider?.get(), !provided.isEmpty {
            merged.merge(provided) { _, provided in provided }
        }
        if let explicit = event.metadata, !explicit.isEmpty {
            merged.merge(explicit) { _, explicit in explicit }
        }
        if let error = event.error {
            merged["error.message"] = "\(error)"
            merged["error.type"] = "\(String(reflecting: type(of: error)))"
        }
        var line = output.timestamp()
        line += " \(event.level)"
        if !label.isEmpty { line += " " + label }
        line += ":"
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) { line += " \(key)=\(value)" }
        line += " [\(event.source)] \(event.message)\n"
        output.write(line)
    }

    /// The descriptor and the timestamp of the current second, shared by a handler's copies.
    private final class Output: Sendable {
        let descriptor: Int32
        /// The second last formatted and its text: `localtime_r` and `strftime` once a second.
        private let clock = LockedValue((second: time_t(-1), text: ""))
        /// One line at a time, so that long lines from several threads cannot interleave.
        private let writing = LockedValue(())

        init(descriptor: Int32) { self.descriptor = descriptor }

        func timestamp() -> String {
            let now = time(nil)
            return clock.withLock { clock in
                if clock.second != now {
                    clock = (now, Self.format(now))
                }
                return clock.text
            }
        }

        func write(_ line: String) {
            var line = line
            line.withUTF8 { bytes in
                writing.withLock { _ in _ = writeAll(descriptor, UnsafeRawBufferPointer(bytes)) }
            }
        }

        /// `2026-12-01T14:42:46+0000`, local time, as `StreamLogHandler` writes it. `localtime_r`
        /// reads the zone once per process (it does not re-check `/etc/localtime` as `localtime` does).
        private static func format(_ second: time_t) -> String {
            var seconds = second
            var local = tm()
            guard localtime_r(&seconds, &local) != nil else { return "<unknown>" }
            var buffer = [CChar](repeating: 0, count: 64)
            let count = strftime(&buffer, buffer.count, "%Y-%m-%dT%H:%M:%S%z", &local)
            return String(decoding: buffer.prefix(count).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }
}
