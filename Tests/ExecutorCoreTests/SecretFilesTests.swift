import Foundation
import Logging
import MesosProto
import PackageFetch
import SparkExecutor
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// File secrets (`spark.mesos.executor.secret.filenames`) are written inside the sandbox only:
/// never through a link the sandbox holds (what the agent's fetcher extracted may link anywhere),
/// never into a FIFO or a second name of another file; a refusal fails the executor's
/// configuration, naming the file and not the value.
@Suite struct SecretFilesTests {
    /// What writing one secret as `name` into `sandbox` gives: nil when it was written, else the
    /// configuration error.
    private func write(_ name: String, into sandbox: String) async throws -> String? {
        var info = Mesos_V1_ExecutorInfo()
        let properties = [
            "spark.mesos.executor.secret.values": "s3cr3t", "spark.mesos.executor.secret.filenames": name,
        ]
        info.data = try JSONSerialization.data(withJSONObject: properties)
        var configuration = FetcherConfiguration()
        configuration.cacheDirectory = nil
        var logger = Logger(label: "secret-files-test")
        logger.logLevel = .critical
        return try await PackageFetcher.withFetcher(configuration: configuration, logger: logger) { fetcher in
            let context = SparkExecutorContext(
                commandLine: [:], environment: [:], sandbox: sandbox, fetcher: fetcher, logger: logger)
            _ = await context.configure(info)
            switch await context.current() {
            case .failure(let error): return "\(error)"
            case .success, nil: return nil
            }
        }
    }

    @Test func aSecretIsWrittenInsideTheSandboxOnly() async throws {
        var template = Array("/tmp/secret-files-XXXXXX".utf8CString)
        let root = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { _ = system("rm -rf '\(root)'") }
        let sandbox = root + "/sandbox"
        let outside = root + "/outside"
        #expect(mkdir(sandbox, 0o750) == 0 && mkdir(outside, 0o755) == 0)
        try Data("kept".utf8).write(to: URL(fileURLWithPath: outside + "/file"))
        #expect(symlink(outside, sandbox + "/conf") == 0)
        #expect(symlink(outside + "/file", sandbox + "/linked") == 0)
        #expect(link(outside + "/file", sandbox + "/second-name") == 0)
        #expect(mkfifo(sandbox + "/fifo", 0o600) == 0)

        let throughLink = try await write("conf/s", into: sandbox)
        #expect(
            throughLink?.contains("(conf: a link, not a file or directory of the sandbox)") == true,
            "\(throughLink ?? "")")
        #expect(!FileManager.default.fileExists(atPath: outside + "/s"))
        let atLink = try await write("linked", into: sandbox)
        #expect(atLink?.contains("(linked: a link, not a file or directory of the sandbox)") == true, "\(atLink ?? "")")
        for name in ["second-name", "fifo"] {
            let refused = try await write(name, into: sandbox)
            #expect(refused?.contains("(\(name): not a regular file of its own)") == true, "\(refused ?? "")")
            #expect(refused?.contains("s3cr3t") == false)
        }
        #expect(FileManager.default.contents(atPath: outside + "/file") == Data("kept".utf8))

        #expect(try await write("a/b/s", into: sandbox) == nil)
        #expect(FileManager.default.contents(atPath: sandbox + "/a/b/s") == Data("s3cr3t".utf8))
        var status = stat()
        #expect(stat(sandbox + "/a/b/s", &status) == 0 && status.st_mode & 0o777 == 0o600)
        #expect(stat(sandbox + "/a", &status) == 0 && status.st_mode & 0o777 == 0o700)
        // Written again (an executor restarted in the same sandbox): the file is replaced whole.
        #expect(try await write("a/b/s", into: sandbox) == nil)
        #expect(FileManager.default.contents(atPath: sandbox + "/a/b/s") == Data("s3cr3t".utf8))
    }
}
