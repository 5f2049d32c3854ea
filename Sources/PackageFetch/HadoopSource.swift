import FetchPolicy
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// hdfs://, s3://, s3a://, s3n:// and other Hadoop filesystems, through `hadoop fs -copyToLocal`
/// into a scratch file that is then streamed like a local file.
struct HadoopSource {
    let uri: FetchURI
    let configuration: FetcherConfiguration
    /// A private directory for the copy; the caller removes it.
    let scratch: String

    func stream(into sink: DownloadSink) async throws(StreamFailure) {
        let hadoop = try locate()
        let target = scratch + "/hadoop-copy"
        let log = scratch + "/hadoop.log"
        let arguments = [hadoop, "fs", "-copyToLocal", uri.location, target]
        let environment = configuration.hadoopEnvironment
        let outcome = await BlockingThread.run { Self.run(arguments, environment: environment, log: log) }
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

    private static func run(_ arguments: [String], environment: [String], log: String) -> Result<Int32, SpawnFailure> {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, log, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = pid_t()
        let rc = posix_spawn(&pid, arguments[0], &actions, nil, &argv, &envp)
        guard rc == 0 else { return .failure(SpawnFailure(message: "cannot start \(arguments[0]): \(errnoText(rc))")) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { return .failure(SpawnFailure(message: "waitpid failed: \(errnoText())")) }
        }
        // WIFEXITED / WEXITSTATUS, which Swift does not import as macros.
        if status & 0x7F == 0 { return .success((status >> 8) & 0xFF) }
        return .failure(SpawnFailure(message: "hadoop was killed by signal \(status & 0x7F)"))
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
