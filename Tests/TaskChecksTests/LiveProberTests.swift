import Foundation
import MesosProto
import NIOCore
import NIOPosix
import SystemSupport
import SystemTestLock
import TaskChecks
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The real probes against real processes and sockets on loopback. Timeouts here are either the
/// thing tested (a check that never ends) or generous.
@Suite(.serialized, .systemTest)
struct LiveProberTests {
    private static func command(_ shell: String, timeout: Duration? = .seconds(60), environment: [String: String] = [:])
        async -> ProbeResult
    {
        var info = Mesos_V1_CommandInfo()
        info.value = shell
        let definition = CheckDefinition(
            kind: .check, probe: .command(info), delay: .zero, interval: .zero, timeout: timeout)
        let context = CheckContext(environment: environment, workingDirectory: NSTemporaryDirectory())
        return await LiveProber(context: context).probe(definition.probe, timeout: timeout)
    }

    @Test func commandExitCodeEnvironmentAndDirectory() async {
        let directory = NSTemporaryDirectory()
        let result = await Self.command(
            #"test "$GREETING" = hi && test "$(pwd -P)" = "$(cd "$DIR" && pwd -P)" && exit 7"#,
            environment: ["GREETING": "hi", "DIR": directory])
        #expect(result == .command(exitCode: 7))
    }

    @Test func commandTimeoutIsAnError() async {
        // The timeout is the point here; the result does not depend on how fast anything is.
        let result = await Self.command("exec sleep 300", timeout: .milliseconds(300))
        #expect(result == .error("the check command timed out after 300ms"))
    }

    @Test func stoppedCheckKillsItsWholeGroup() async throws {
        let marker = NSTemporaryDirectory() + "check-child-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { unlink(marker) }
        // The check starts a grandchild that would outlive it, then waits for ever, until checking stops.
        let pid: Int32? = await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = await Self.command("sleep 300 & echo $! > \(marker); wait", timeout: nil) }
            var pid: Int32?
            for _ in 0..<1200 where pid == nil {
                let text = (try? String(contentsOfFile: marker, encoding: .utf8)) ?? ""
                if text.hasSuffix("\n") {
                    pid = Int32(text.dropLast())
                } else {
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }
            group.cancelAll()
            await group.waitForAll()
            return pid
        }
        let grandchild = try #require(pid, "the check never started its grandchild")
        #expect(await Self.waitUntilGone(grandchild), "the check's grandchild was left running")
    }

    /// Gone, or a zombie nobody reaped yet (it no longer runs); looked for on a thread of its own,
    /// for up to a minute, so that the wait holds none of the cooperative pool the suites share.
    private static func waitUntilGone(_ pid: Int32) async -> Bool {
        await BlockingThread.run {
            for _ in 0..<1200 {
                if kill(pid, 0) != 0 { return true }
                let stat = (try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)) ?? ""
                if let close = stat.lastIndex(of: ")"), stat[stat.index(after: close)...].hasPrefix(" Z") {
                    return true
                }
                usleep(50_000)
            }
            return false
        }
    }

    @Test func tcpConnectSucceedsAndFails() async throws {
        let server = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .bind(host: "127.0.0.1", port: 0).get()
        let port = try #require(server.localAddress?.port)
        let definition = CheckDefinition(
            kind: .check, probe: .tcp(port: port, ipv6: false), delay: .zero, interval: .zero, timeout: .seconds(60))
        let context = CheckContext(environment: [:], workingDirectory: "/")
        let open = await LiveProber(context: context).probe(definition.probe, timeout: .seconds(60))
        #expect(open == .tcp(succeeded: true))
        try await server.close()
        let closed = await LiveProber(context: context).probe(definition.probe, timeout: .seconds(60))
        #expect(closed == .tcp(succeeded: false))
    }
}
