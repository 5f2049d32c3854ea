import CForkServer
import Foundation
import ProcessSupervision
import Synchronization
import SystemSupport
import Testing
import WorkerWire

@testable import SparkExecutor
@testable import TaskRunning
@testable import WorkerPool

/// Whether this process runs under ThreadSanitizer (its runtime is linked in), and so the demo
/// worker too: both come from the same build.
private let runsUnderThreadSanitizer = dlsym(nil, "__tsan_init") != nil

/// What the demo worker's `process` function says about the process that ran it.
struct ProcessReport: Equatable {
    var pid: Int32
    var parent: Int32
    var session: Int32
    var origin: String
    var probe: String

    init(_ outcome: TaskOutcome) throws {
        guard case .succeeded(let data?, _, _) = outcome else { throw ReportError(text: outcome.text) }
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

    /// The first notice containing `text`; nil if none came within a minute (so a broken pool
    /// fails the test instead of hanging it).
    func first(containing text: String) async -> String? {
        let stream = self.stream
        return await withTaskGroup(of: String?.self) { group in
            group.addTask {
                for await notice in stream where notice.contains(text) { return notice }
                return nil
            }
            group.addTask {
                try? await Task.sleep(for: .seconds(60))
                return nil
            }
            let first = await group.next() ?? nil
            group.cancelAll()
            return first
        }
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

/// A forking pool whose server is up and then stopped (SIGSTOP): it takes requests and never
/// answers them.
func withStoppedForkServer(
    answerTimeout: Duration, _ body: (WorkerPool, Int32, ClosureTaskRunner, Notices) async throws -> Void
) async throws {
    let notices = Notices()
    var configuration = try poolConfiguration(.forked)
    configuration.notice = notices.receiver
    configuration.forkServerAnswerTimeout = answerTimeout
    try await withPool(configuration) { pool in
        #expect(await pool.forkServerStarted())
        let server = try #require(pool.forkServerProcessID)
        kill(server, SIGSTOP)
        try await body(pool, server, ClosureTaskRunner(pool: pool, sandbox: pool.configuration.sandbox), notices)
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

    @Test func aProgramWithThreadsBeforeRunIsNoForkServer() async throws {
        try await withForkingPool(environment: ["DEMO_WORKER_MODE": "threaded"]) { pool, runner, notices in
            #expect(await pool.forkServerStarted() == false)
            let report = try ProcessReport(await run(runner, closureTask("t-threaded", "process", "")))
            #expect(report.origin == "spawned")
            #expect(await notices.first(containing: "does not offer to be a fork server") != nil)
            // It wrote before it answered: the line is in its pipe, if not yet in the file.
            LogDrain.shared.flushAll()
            let log = try String(
                contentsOfFile: pool.configuration.sandbox + "/workers/fork-server/stderr", encoding: .utf8)
            // Under ThreadSanitizer the program's first thread of its own also starts TSan's
            // background thread.
            let threads = runsUnderThreadSanitizer ? 3 : 2
            #expect(log.contains("\(threads) threads before run(), so not a fork server"), "\(log)")
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

    @Test func aStuckForkServerIsGivenUpAndWorkersAreSpawned() async throws {
        try await withStoppedForkServer(answerTimeout: .milliseconds(200)) { pool, _, runner, notices in
            let report = try ProcessReport(await run(runner, closureTask("t-stuck", "process", "")))
            #expect(report.origin == "spawned")
            #expect(pool.forkServerProcessID == nil)
            let notice = await notices.first(containing: "fork server failed")
            #expect(notice?.contains("did not answer within 0.2 seconds") == true, "\(notice ?? "")")
        }
    }

    /// A request waits for a stuck server's answer on the server's own thread and without the
    /// server's lock: the pool's other callers (every task asks what the server offers) go on
    /// meanwhile, and a server that dies mid-request leaves that task a spawned worker.
    @Test func callersDoNotWaitWithARequestForAStuckServersAnswer() async throws {
        try await withStoppedForkServer(answerTimeout: .seconds(3600)) { pool, server, runner, notices in
            async let stuck = run(runner, closureTask("t-stuck", "process", ""))
            let clock = ContinuousClock()
            let giveUp = clock.now + .seconds(60)
            while !pool.forkServerIsAwaitingAnswer && clock.now < giveUp { try await Task.sleep(for: .milliseconds(5)) }
            #expect(pool.forkServerIsAwaitingAnswer, "the request reached the stuck server")
            // Held up behind the request's lock, these would wait for the hour-long timeout.
            #expect(pool.forkServerProcessID == server)
            #expect(pool.forkServerReady)
            kill(server, SIGKILL)
            let report = try ProcessReport(await stuck)
            #expect(report.origin == "spawned")
            #expect(await notices.first(containing: "fork server") != nil)
            #expect(pool.forkServerProcessID == nil)
        }
    }

    @Test func anEnvironmentTooLargeToSendGetsASpawnedWorker() async throws {
        try await withForkingPool { pool, runner, _ in
            #expect(await pool.forkServerStarted())
            let large = String(repeating: "x", count: 70 * 1024)
            let task = closureTask(
                "t-large", "process", "", environment: ["DEMO_PROBE": "large", "DEMO_BALLAST": large])
            let report = try ProcessReport(await run(runner, task))
            #expect(report.origin == "spawned")
            #expect(report.probe == "large")
            #expect(pool.forkServerReady, "the server stays in use for later tasks")
            let next = try ProcessReport(await run(runner, closureTask("t-small", "process", "")))
            #expect(next.origin == "forked")
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

/// The fork server's socket protocol, spoken directly to a demo worker started as a fork server.
@Suite("Fork server protocol")
struct ForkServerProtocolTests {
    /// A demo worker started as a fork server, and our end of its control socket.
    struct Server {
        let process: ChildProcess
        let control: Int32

        init() async throws {
            var sockets: [Int32] = [-1, -1]
            try #require(cfs_socketpair(&sockets) == 0)
            var hello: [Int32] = [-1, -1]
            try #require(pipe(&hello) == 0)
            let null = open("/dev/null", O_RDWR)
            process = try ChildProcess.spawn(
                SpawnRequest(
                    executable: try demoWorkerPath(), arguments: ["demo-worker"],
                    environment: ["\(workerForkServerVariable)=5"],
                    fileDescriptors: [(null, 0), (null, 1), (null, 2), (null, 3), (hello[1], 4), (sockets[1], 5)]))
            close(null)
            close(hello[1])
            close(sockets[1])
            control = sockets[0]
            // Its hello says it is a fork server.
            let greeting = try await ForkServerProtocolTests.readHello(from: hello[0], who: "the fork server")
            close(hello[0])
            #expect(greeting.forkServer == true)
            #expect(greeting.forkServerJoinsCgroups == true)
            #expect(greeting.forkServerCreatesInCgroup == true)
        }

        /// Sends raw bytes with `descriptors` attached and returns the answer.
        func exchange(_ bytes: [UInt8], descriptors: [Int32]) -> Int32 {
            var message = msghdr()
            var answer: Int32 = 0
            let sent = bytes.withUnsafeBytes { raw -> Int in
                var part = iovec(iov_base: UnsafeMutableRawPointer(mutating: raw.baseAddress), iov_len: raw.count)
                let space = MemoryLayout<cmsghdr>.size + 16 * MemoryLayout<Int32>.size
                let buffer = UnsafeMutableRawPointer.allocate(byteCount: space, alignment: 8)
                defer { buffer.deallocate() }
                memset(buffer, 0, space)
                return withUnsafeMutablePointer(to: &part) { partPointer in
                    message.msg_iov = partPointer
                    message.msg_iovlen = 1
                    if !descriptors.isEmpty {
                        let header = buffer.assumingMemoryBound(to: cmsghdr.self)
                        header.pointee.cmsg_level = SOL_SOCKET
                        header.pointee.cmsg_type = Int32(SCM_RIGHTS)
                        let length = MemoryLayout<cmsghdr>.size + descriptors.count * MemoryLayout<Int32>.size
                        header.pointee.cmsg_len = length
                        let data = buffer + MemoryLayout<cmsghdr>.size
                        for (index, fd) in descriptors.enumerated() {
                            data.storeBytes(of: fd, toByteOffset: index * 4, as: Int32.self)
                        }
                        message.msg_control = buffer
                        message.msg_controllen = length
                    }
                    return sendmsg(control, &message, Int32(MSG_NOSIGNAL))
                }
            }
            guard sent >= 0 else { return -errno }
            guard recv(control, &answer, 4, 0) == 4 else { return -errno }
            return answer
        }
    }

    /// Reads from `descriptor` until a whole hello has come. The reads block, so they run on a
    /// thread of their own, not on the cooperative pool the suites share.
    static func readHello(from descriptor: Int32, who: String) async throws -> WorkerHello {
        let hello = await BlockingThread.run { () -> Result<WorkerHello?, any Error> in
            Result {
                var decoder = FrameDecoder()
                var chunk = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    guard count > 0 else { return nil }
                    decoder.feed(chunk[0..<count])
                    if let frame = try decoder.next(), case .hello(let message) = try FromWorker(decoding: frame) {
                        return message
                    }
                }
            }
        }
        return try #require(try hello.get(), "\(who) closed its pipe before saying hello")
    }

    /// A request's worker pipes, ours and the new worker's ends.
    struct Pipes {
        var down: [Int32] = [-1, -1]
        var up: [Int32] = [-1, -1]
        var errors: [Int32] = [-1, -1]

        init() throws {
            try #require(pipe(&down) == 0 && pipe(&up) == 0 && pipe(&errors) == 0)
        }

        /// The new worker's stdout, stderr, fd 3 and fd 4.
        func forWorker(stdout: Int32) -> [Int32] { [stdout, errors[1], down[0], up[1]] }

        /// Closes the new worker's ends (it has its own).
        func closeWorkerEnds() {
            for fd in [down[0], up[1], errors[1]] { close(fd) }
        }

        /// Everything the new worker wrote to `fd` until it closed it (read on a thread of its own).
        static func readAll(_ fd: Int32) async -> [UInt8] {
            await BlockingThread.run {
                var bytes: [UInt8] = []
                var chunk = [UInt8](repeating: 0, count: 4096)
                while true {
                    let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
                    if count < 0 && errno == EINTR { continue }
                    if count <= 0 { return bytes }
                    bytes += chunk[0..<count]
                }
            }
        }
    }

    /// This process's own directory in the cgroup2 hierarchy, if it may make cgroups there (root,
    /// a cgroup2 mount).
    static let ownCgroup2Directory: String? = {
        guard let mounts = try? String(contentsOfFile: "/proc/self/mounts", encoding: .utf8),
            let own = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8)
        else { return nil }
        let fields: [[Substring]] = mounts.split(separator: "\n").map { $0.split(separator: " ") }
        guard let mount = fields.first(where: { $0.count > 2 && $0[2] == "cgroup2" }),
            let line = own.split(separator: "\n").first(where: { $0.hasPrefix("0::") })
        else { return nil }
        let path = String(line.dropFirst(3))
        let directory: String = String(mount[1]) + (path == "/" ? "" : path)
        return access(directory, W_OK) == 0 ? directory : nil
    }()

    /// How a request carries a cgroup: its `cgroup.procs` file, which the new worker writes "0" to,
    /// or its directory, which the new worker is created in (or, where the kernel refuses that,
    /// joins through its `cgroup.procs`).
    enum CgroupDescriptor: CaseIterable {
        case procsFile, directory
    }

    /// Either way the new worker is inside before its hello.
    @Test(
        .enabled(if: ownCgroup2Directory != nil, "no cgroup2 hierarchy this test may write"),
        arguments: CgroupDescriptor.allCases)
    func aNewWorkerIsInTheCgroupOfItsRequestBeforeItSaysHello(carried: CgroupDescriptor) async throws {
        let scratch = try #require(Self.ownCgroup2Directory) + "/fork-join-test-\(getpid())-\(carried)"
        try #require(mkdir(scratch, 0o755) == 0 || errno == EEXIST, "mkdir \(scratch): errno \(errno)")
        defer { rmdir(scratch) }
        let server = try await Server()
        defer { close(server.control) }
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        let join =
            switch carried {
            case .procsFile: open(scratch + "/cgroup.procs", O_WRONLY | O_CLOEXEC)
            case .directory: open(scratch, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
            }
        try #require(join >= 0)
        let pipes = try Pipes()
        let pid = server.exchange(Array("SMEF".utf8), descriptors: pipes.forWorker(stdout: null) + [join])
        close(join)
        pipes.closeWorkerEnds()
        try #require(pid > 0, "answer \(pid)")
        let worker = try ChildProcess.adopt(pid: pid)
        // Its hello comes after the join: by then it is inside.
        _ = try await Self.readHello(from: pipes.up[0], who: "the new worker")
        let procs = try String(contentsOfFile: scratch + "/cgroup.procs", encoding: .utf8)
        #expect(procs.split(separator: "\n") == ["\(pid)"])
        close(pipes.down[1])
        #expect(await worker.wait() == .exited(0))
        close(pipes.up[0])
        close(pipes.errors[0])
    }

    @Test func aRequestWhoseDirectoryIsNoCgroupGetsNoWorkerAndTheServerGoesOn() async throws {
        let server = try await Server()
        defer { close(server.control) }
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        // The kernel refuses to create a worker in a directory that is no cgroup.
        let plain = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        let refused = try Pipes()
        let answer = server.exchange(Array("SMEF".utf8), descriptors: refused.forWorker(stdout: null) + [plain])
        close(plain)
        refused.closeWorkerEnds()
        if answer > 0 {
            // A kernel without clone3's CLONE_INTO_CGROUP: the worker finds no cgroup.procs there.
            let orphan = try ChildProcess.adopt(pid: answer)
            #expect(await orphan.wait() == .exited(CFS_JOIN_FAILED_STATUS))
        } else {
            #expect(answer < 0)
        }
        for fd in [refused.down[1], refused.up[0], refused.errors[0]] { close(fd) }
        let again = try Pipes()
        let next = server.exchange(Array("SMEF".utf8), descriptors: again.forWorker(stdout: null))
        again.closeWorkerEnds()
        try #require(next > 0, "answer \(next)")
        close(again.down[1])
        #expect(await (try ChildProcess.adopt(pid: next)).wait() == .exited(0))
        for fd in [again.up[0], again.errors[0]] { close(fd) }
    }

    @Test func aNewWorkerThatCannotJoinItsCgroupSaysWhyAndExitsBeforeItsHello() async throws {
        let server = try await Server()
        defer { close(server.control) }
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        // Not writable: its join fails with EBADF.
        let unwritable = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let pipes = try Pipes()
        let pid = server.exchange(Array("SMEF".utf8), descriptors: pipes.forWorker(stdout: null) + [unwritable])
        close(unwritable)
        pipes.closeWorkerEnds()
        try #require(pid > 0, "answer \(pid)")
        let worker = try ChildProcess.adopt(pid: pid)
        #expect(await Pipes.readAll(pipes.up[0]).isEmpty, "no hello from a worker outside its cgroup")
        let said = String(decoding: await Pipes.readAll(pipes.errors[0]), as: UTF8.self)
        #expect(said == "fork server: the new worker cannot join its cgroup (/dev/null): Bad file descriptor\n")
        #expect(await worker.wait() == .exited(CFS_JOIN_FAILED_STATUS))
        for fd in [pipes.down[1], pipes.up[0], pipes.errors[0]] { close(fd) }
        // The server goes on serving.
        let again = try Pipes()
        let next = server.exchange(Array("SMEF".utf8), descriptors: again.forWorker(stdout: null))
        again.closeWorkerEnds()
        try #require(next > 0, "answer \(next)")
        close(again.down[1])
        let nextWorker = try ChildProcess.adopt(pid: next)
        #expect(await nextWorker.wait() == .exited(0))
        for fd in [again.up[0], again.errors[0]] { close(fd) }
    }

    @Test func malformedRequestsAreRefusedAndTheServerKeepsServing() async throws {
        let server = try await Server()
        let null = open("/dev/null", O_RDWR)
        defer { close(null) }
        // Not the magic; the magic without descriptors; the magic with two descriptors.
        #expect(server.exchange(Array("HELLO".utf8), descriptors: [null, null, null, null]) == -EPROTO)
        #expect(server.exchange(Array("SMEF".utf8), descriptors: []) == -EPROTO)
        #expect(server.exchange(Array("SMEF".utf8), descriptors: [null, null]) == -EPROTO)
        // More cgroup.procs files than a request may carry: refused, none joined.
        let tooMany = [Int32](repeating: null, count: 4 + Int(CFS_MAXIMUM_JOINS) + 1)
        #expect(server.exchange(Array("SMEF".utf8), descriptors: tooMany) == -E2BIG)
        // An entry without '=' and one without its NUL are skipped; the good one is set.
        var down: [Int32] = [-1, -1]
        var up: [Int32] = [-1, -1]
        try #require(pipe(&down) == 0 && pipe(&up) == 0)
        let environment = Array("SMEF".utf8) + Array("JUNK\0DEMO_PROBE=fine\0".utf8)
        let pid = server.exchange(environment, descriptors: [null, null, down[0], up[1]])
        try #require(pid > 0, "a well-formed request after bad ones is served (answer \(pid))")
        close(down[0])
        close(up[1])
        let worker = try ChildProcess.adopt(pid: pid)
        // The new worker speaks the ordinary protocol: hello, then one run.
        var request: [UInt8] = []
        Frame.append(
            ToWorker.run(RunRequest(id: 1, taskID: "t", function: "process", payload: [])).encoded(), to: &request)
        _ = request.withUnsafeBytes { write(down[1], $0.baseAddress, $0.count) }
        var decoder = FrameDecoder()
        var messages: [FromWorker] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            // Its input closes once it answered (as the pool does), so it exits.
            if messages.count == 2 && down[1] >= 0 {
                close(down[1])
                down[1] = -1
            }
            let count = chunk.withUnsafeMutableBytes { read(up[0], $0.baseAddress, $0.count) }
            if count <= 0 { break }
            decoder.feed(chunk[0..<count])
            while let frame = try decoder.next() { messages.append(try FromWorker(decoding: frame)) }
        }
        close(up[0])
        #expect(await worker.wait() == .exited(0))
        guard messages.count == 2, case .hello(let hello) = messages[0], case .result(let result) = messages[1] else {
            Issue.record("unexpected messages: \(messages)")
            return
        }
        #expect(hello.forkServer == false)
        let text = String(decoding: result.data, as: UTF8.self)
        #expect(text.contains("ppid=\(getpid()) ") && text.contains("origin=forked"), "\(text)")
        #expect(text.hasSuffix("probe=fine"), "\(text)")
        // Closing the socket ends the server.
        close(server.control)
        #expect(await server.process.wait() == .exited(0))
    }
}
