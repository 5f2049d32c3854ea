import FetchPolicy
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// hdfs://, s3://, s3a://, s3n:// and other Hadoop filesystems, through `hadoop fs -cat` into a
/// scratch file that is then streamed like a local file. The executor makes the file and hands it
/// to hadoop as its standard output, so hadoop may run as a task's user (`user`, as Mesos's fetcher
/// runs it) and write the copy without any directory of the executor's being open to that user.
struct HadoopSource {
    let uri: FetchURI
    let configuration: FetcherConfiguration
    /// A private directory for the copy; the caller removes it.
    let scratch: String
    /// Whom hadoop runs as (a task of another user's URI); nil: the executor's user.
    var user: UserIdentity? = nil

    func stream(into sink: DownloadSink) async throws(StreamFailure) {
        let hadoop = try locate()
        let target = scratch + "/hadoop-copy"
        let log = scratch + "/hadoop.log"
        let arguments = [hadoop, "fs", "-cat", uri.location]
        let environment = configuration.hadoopEnvironment
        let outcome = await Self.run(arguments, environment: environment, copy: target, log: log, user: user)
        switch outcome {
        case .failure(let failure): throw .fetch(.hadoopFailed(uri.value, failure.message))
        case .success(let status) where status != 0:
            let detail = Self.tail(of: log)
            throw .fetch(.hadoopFailed(uri.value, "exit status \(status)" + (detail.isEmpty ? "" : ": \(detail)")))
        case .success: break
        }
        try await LocalSource(uri: uri, path: target).stream(into: sink)
    }

    /// The `hadoop` program: $HADOOP_HOME/bin/hadoop, else the first one on PATH.
    func locate() throws(StreamFailure) -> String {
        var searched: [String] = []
        if let home = configuration.hadoopHome {
            let candidate = home + "/bin/hadoop"
            if access(candidate, X_OK) == 0 { return candidate }
            searched.append("HADOOP_HOME=\(home) has no executable bin/hadoop")
        } else {
            searched.append("HADOOP_HOME is not set")
        }
        let path = configuration.searchPath ?? ""
        for directory in path.split(separator: ":") where !directory.isEmpty {
            let candidate = String(directory) + "/hadoop"
            if access(candidate, X_OK) == 0 { return candidate }
        }
        searched.append("'hadoop' is not on PATH (\(path.isEmpty ? "PATH is empty" : path))")
        throw .fetch(.hadoopMissing(uri.value, searched: searched.joined(separator: "; ")))
    }

    /// Runs hadoop to its end, its output in `log`: started as every child of the executor is
    /// (``ChildProcess``: a session of its own, signal dispositions and mask reset, tracked by the
    /// executor's reaper, which takes every untracked child that exits as an orphan and so could
    /// reap a child waited for with `waitpid` first), and killed with what it started when the
    /// fetch is cancelled.
    private static func run(
        _ arguments: [String], environment: [String], copy: String, log: String, user: UserIdentity?
    ) async -> Result<Int32, SpawnFailure> {
        let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return .failure(SpawnFailure(message: "cannot open /dev/null: \(errnoText())")) }
        defer { close(input) }
        unlink(copy)
        let data = open(copy, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard data >= 0 else { return .failure(SpawnFailure(message: "cannot create \(copy): \(errnoText())")) }
        defer { close(data) }
        let output = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { return .failure(SpawnFailure(message: "cannot create \(log): \(errnoText())")) }
        defer { close(output) }
        let child: ChildProcess
        do {
            // Another user's hadoop works in / (the executor's directories need not let it in).
            child = try ChildProcess.spawn(
                SpawnRequest(
                    executable: arguments[0], arguments: arguments, environment: environment,
                    workingDirectory: user == nil ? nil : "/", fileDescriptors: [(input, 0), (data, 1), (output, 2)],
                    user: user))
        } catch {
            return .failure(SpawnFailure(message: "cannot start \(arguments[0]): \(error)"))
        }
        let termination = await withTaskCancellationHandler {
            await child.wait()
        } onCancel: {
            child.signalGroup(SIGKILL)
        }
        switch termination {
        case .exited(let status): return .success(status)
        case .signaled: return .failure(SpawnFailure(message: "hadoop was \(termination)"))
        }
    }

    /// The last lines of hadoop's output, for the error message.
    private static func tail(of path: String) -> String {
        guard let file = fopen(path, "r") else { return "" }
        defer { fclose(file) }
        var text: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            text += buffer[0..<count]
            if text.count > 8192 { text.removeFirst(text.count - 8192) }
        }
        let lines = String(decoding: text, as: UTF8.self).split(separator: "\n").suffix(3)
        return lines.joined(separator: " | ")
    }
}

struct SpawnFailure: Error {
    let message: String
}
