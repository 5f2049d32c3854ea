import Foundation
import ProcessSupervision
import Testing

@testable import WorkerPool

#if canImport(Glibc)
    import Glibc
#endif

/// A worker whose pipes NIO cannot watch (a regular file where its output pipe should be: NIO
/// refuses it before it makes a channel and gives the descriptors back): the connection ends at
/// once with why, the worker is killed, and the descriptors are closed.
@Suite(.timeLimit(.minutes(2)))
struct WorkerConnectionTests {
    @Test func pipesThatCannotBeWatchedEndTheConnectionAndAreClosed() async throws {
        try await withSandbox { sandbox in
            let fromWorker = open(sandbox + "/output", O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
            try #require(fromWorker >= 0)
            var output = stat()
            try #require(fstat(fromWorker, &output) == 0)
            var input: [Int32] = [-1, -1]
            try #require(makeCloseOnExecPipe(&input) == 0)
            defer { close(input[0]) }
            _ = fcntl(input[0], F_SETFL, O_NONBLOCK)
            let child = try ChildProcess.spawn(
                SpawnRequest(executable: "/bin/sleep", arguments: ["sleep", "300"], environment: []))
            let logs = try StandardStreamFiles(directory: sandbox + "/logs")
            defer { logs.close() }

            let connection = WorkerConnection(
                worker: LaunchedWorker(child: child, fromWorker: fromWorker, toWorker: input[1], logs: logs),
                helloTimeout: .seconds(600), maximumMessageSize: 1 << 20)
            let end = await connection.serve(mailbox: WorkerMailbox(), onHello: { _ in }, onResults: { _ in })

            guard case .protocolError(let why) = end else {
                Issue.record("ended \(end), not with a protocol error")
                return
            }
            #expect(why.contains("its pipes could not be watched"), "\(why)")
            #expect(await child.wait() == .signaled(SIGKILL))
            // The file is no longer open under its number (which may have been reused since).
            var now = stat()
            #expect(fstat(fromWorker, &now) != 0 || now.st_ino != output.st_ino || now.st_dev != output.st_dev)
            // Every write end of the worker's input is closed (ours and the mailbox's copy): its read
            // end is at its end rather than waiting for more.
            var byte: UInt8 = 0
            #expect(read(input[0], &byte, 1) == 0)
        }
    }
}
