import Foundation
import Synchronization
import Testing
import WorkerPool

@testable import ExecutorCore

/// What the demo worker's `process` function says about the process that ran it.
struct ProcessReport: Equatable {
    var pid: Int32
    var parent: Int32
    var session: Int32
    var origin: String
    var probe: String

    init(_ outcome: TaskOutcome) throws {
        guard case .succeeded(let data?, _) = outcome else { throw ReportError(text: outcome.text) }
        var fields: [String: String] = [:]
        for pair in String(decoding: data, as: UTF8.self).split(separator: " ") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { fields[parts[0]] = parts[1] }
        }
        guard let pid = fields["pid"].flatMap(Int32.init), let parent = fields["ppid"].flatMap(Int32.init),
            let session = fields["sid"].flatMap(Int32.init), let origin = fields["origin"], let probe = fields["probe"]
        else { throw ReportError(text: String(decoding: data, as: UTF8.self)) }
        (self.pid, self.parent, self.session, self.origin, self.probe) = (pid, parent, session, origin, probe)
    }

    struct ReportError: Error {
        let text: String
    }
}

/// Collects the pool's notices and lets a test wait for one.
final class Notices: Sendable {
    private let stream: AsyncStream<String>
    private let continuation: AsyncStream<String>.Continuation

    init() {
        (stream, continuation) = AsyncStream.makeStream(of: String.self)
    }

    var receiver: @Sendable (String) -> Void {
        let continuation = self.continuation
        return { continuation.yield($0) }
    }

    /// The first notice containing `text`.
    func first(containing text: String) async -> String? {
        for await notice in stream where notice.contains(text) { return notice }
        return nil
    }
}

/// Runs `body` with a fine-mode pool that uses a fork server, once it has started or been given up.
func withForkingPool(
    environment: [String: String] = [:], _ body: (WorkerPool, ClosureTaskRunner, Notices) async throws -> Void
) async throws {
    let notices = Notices()
    var configuration = try poolConfiguration(.forked, environment: environment)
    configuration.notice = notices.receiver
    try await withPool(configuration) { pool in
        try await body(pool, ClosureTaskRunner(pool: pool, sandbox: pool.configuration.sandbox), notices)
    }
}

@Suite("Fine mode's fork server")
struct ForkServerTests {
    @Test func forkedWorkersAreFreshSessionLeadingChildrenOfThePool() async throws {
        try await withForkingPool { pool, runner, notices in
            #expect(await pool.forkServerStarted())
            let server = try #require(pool.forkServerProcessID)
            var reports: [ProcessReport] = []
            for index in 0..<3 {
                let task = closureTask("t-\(index)", "process", "", environment: ["DEMO_PROBE": "probe-\(index)"])
                reports.append(try ProcessReport(await run(runner, task)))
            }
            for (index, report) in reports.enumerated() {
                #expect(report.origin == "forked")
                #expect(report.parent == getpid(), "a forked worker is the pool's child, not the server's")
                #expect(report.session == report.pid, "a forked worker leads a session of its own")
                #expect(report.pid != server)
                #expect(report.probe == "probe-\(index)", "the closure environment is the worker's environment")
                let stdout = try String(
                    contentsOfFile: "\(pool.configuration.sandbox)/tasks/t-\(index)/stdout", encoding: .utf8)
                #expect(stdout == "process \(report.pid) says hello\n")
            }
            #expect(Set(reports.map(\.pid)).count == 3, "every task gets a fresh process")
            #expect(await notices.first(containing: "fork server ready (pid \(server))") != nil)
        }
    }

    @Test func aProgramThatIsNoForkServerHasItsWorkersSpawned() async throws {
        try await withForkingPool(environment: ["DEMO_WORKER_MODE": "noforks"]) { pool, runner, notices in
            #expect(await pool.forkServerStarted() == false)
            let report = try ProcessReport(await run(runner, closureTask("t-spawned", "process", "")))
            #expect(report.origin == "spawned")
            #expect(report.parent == getpid())
            let notice = await notices.first(containing: "no worker fork server")
            #expect(notice?.contains("does not offer to be a fork server") == true, "\(notice ?? "")")
        }
    }

    @Test func workersAreSpawnedOnceTheForkServerDies() async throws {
        try await withForkingPool { pool, runner, notices in
            #expect(await pool.forkServerStarted())
            let server = try #require(pool.forkServerProcessID)
            let before = try ProcessReport(await run(runner, closureTask("t-before", "process", "")))
            #expect(before.origin == "forked")
            kill(server, SIGKILL)
            let notice = await notices.first(containing: "fork server ended")
            #expect(notice?.contains("SIGKILL") == true, "\(notice ?? "")")
            #expect(pool.forkServerProcessID == nil)
            let report = try ProcessReport(await run(runner, closureTask("t-after", "process", "")))
            #expect(report.origin == "spawned")
        }
    }

    @Test func aForkServerIsNotStartedWhenTurnedOff() async throws {
        try await withPool(try poolConfiguration(.fine)) { pool in
            #expect(await pool.forkServerStarted() == false)
            let runner = ClosureTaskRunner(pool: pool, sandbox: pool.configuration.sandbox)
            let report = try ProcessReport(await run(runner, closureTask("t-plain", "process", "")))
            #expect(report.origin == "spawned")
        }
    }
}
