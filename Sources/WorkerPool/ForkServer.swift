import CForkServer
import ProcessSupervision
import WorkerWire
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Fine mode's fork server: one warm instance of the worker program that forks a fresh worker
/// for each task, so a task pays for a fork instead of exec, dynamic linking and program start.
///
/// The server is started like any worker, with a control socket on fd 5 and
/// `SPARK_MESOS_WORKER_FORK_SERVER=5`; a program that understands it says hello with
/// `fork_server` set (the Worker SDK's `run()` does), any other is stopped and the pool spawns
/// every worker itself. Forked workers are created with clone(CLONE_PARENT), so they are our
/// children: they are adopted, watched and reaped exactly like spawned ones. Requests go one at a
/// time over the socket; a server that fails or stalls is given up and the pool spawns again.
final class ForkServer: Sendable {
    private enum State {
        case notStarted
        case starting
        case ready(control: Int32, server: ChildProcess, hello: WorkerHello)
        case unavailable(String)
    }

    /// The state, and the request being exchanged over the control socket, which is done outside
    /// the lock: a request waits for the server's answer (up to `forkServerAnswerTimeout`), and the
    /// cooperative threads that ask what the server offers must not wait with it.
    private struct Guarded {
        var state = State.notStarted
        var exchanging = false

        /// Gives the server up, closing the control socket now or, during an exchange over it,
        /// when that ends (so that its descriptor is not reused under the exchange).
        mutating func giveUp(_ reason: String) {
            switch state {
            case .ready(let control, _, _):
                if !exchanging { close(control) }
                state = .unavailable(reason)
            case .notStarted, .starting:
                state = .unavailable(reason)
            case .unavailable:
                break
            }
        }
    }

    /// The most `cgroup.procs` files a request may carry for its worker to join.
    static let maximumJoins = Int(CFS_MAXIMUM_JOINS)

    private let configuration: WorkerPoolConfiguration
    private let guarded = LockedValue(Guarded())
    /// Where requests for a worker are made, one at a time (see ``fork(stdout:stderr:input:output:environment:)``).
    private let requests = SerialThread(named: "fork-requests")

    init(configuration: WorkerPoolConfiguration) {
        self.configuration = configuration
    }

    /// True once the server is up and forking.
    var isReady: Bool {
        guarded.withLock { if case .ready = $0.state { true } else { false } }
    }

    /// The server's pid while it is in use.
    var processID: Int32? {
        guarded.withLock { if case .ready(_, let server, _) = $0.state { server.pid } else { nil } }
    }

    /// The functions the server's hello listed (a forked worker is the same program, so it offers
    /// the same ones); empty while the server is not in use or when its hello listed none.
    var offeredFunctions: Set<String> {
        guarded.withLock { if case .ready(_, _, let hello) = $0.state { Set(hello.functions) } else { [] } }
    }

    /// True while the server is in use and its forked workers join their cgroups themselves (its
    /// hello said `fork_server_joins_cgroups`): a request may then carry the cgroup files.
    var joinsCgroups: Bool {
        guarded.withLock { if case .ready(_, _, let hello) = $0.state { hello.forkServerJoinsCgroups } else { false } }
    }

    /// True while the server is in use and its forked workers can be created in their v2 cgroup
    /// (its hello said `fork_server_creates_in_cgroup`): a request may then carry that directory.
    var createsInCgroups: Bool {
        guarded.withLock {
            if case .ready(_, _, let hello) = $0.state {
                hello.forkServerJoinsCgroups && hello.forkServerCreatesInCgroup
            } else {
                false
            }
        }
    }

    /// True while a request waits for the server's answer.
    var isAwaitingAnswer: Bool {
        guarded.withLock { $0.exchanging }
    }

    /// Why the server is not in use, once it was given up.
    var unavailableReason: String? {
        guarded.withLock { if case .unavailable(let why) = $0.state { why } else { nil } }
    }

    /// Starts the server program and waits (blocking; run it on a thread of its own) for its
    /// hello. Returns the process to be waited for, or nil if none is left running.
    func start() -> ChildProcess? {
        let proceed = guarded.withLock { guarded in
            guard case .notStarted = guarded.state else { return false }
            guarded.state = .starting
            return true
        }
        guard proceed else { return nil }
        do {
            let (control, server, hello) = try launchAndGreet()
            let kept = guarded.withLock { guarded in
                guard case .starting = guarded.state else { return false }
                guarded.state = .ready(control: control, server: server, hello: hello)
                return true
            }
            if !kept {
                // Shut down while it started.
                close(control)
                server.signalGroup(SIGKILL)
            }
            return server
        } catch let failure as StartFailure {
            giveUp(failure.reason)
            failure.server?.signalGroup(SIGKILL)
            return failure.server
        } catch {
            giveUp("\(error)")
            return nil
        }
    }

    /// Asks the server for a worker with these descriptors (stdout, stderr, and the worker's ends
    /// of its two protocol pipes) and extra environment. Nil when the server is not ready or the
    /// request failed: the caller spawns the worker itself. `joins` are cgroup files the new
    /// worker joins before anything else (and a cgroup2 directory it is created in, for a server
    /// that ``createsInCgroups``), only for a server that ``joinsCgroups`` (at most
    /// `CFS_MAXIMUM_JOINS`); the caller keeps and closes them.
    /// The request is made on the server's own thread: the server may take up to
    /// `forkServerAnswerTimeout` to answer, and no thread of the cooperative pool waits for it.
    func fork(
        stdout: Int32, stderr: Int32, input: Int32, output: Int32, joins: [Int32] = [],
        environment: [String: String]
    ) async -> ChildProcess? {
        var block: [UInt8] = []
        for (name, value) in environment {
            block.append(contentsOf: name.utf8)
            block.append(UInt8(ascii: "="))
            block.append(contentsOf: value.utf8)
            block.append(0)
        }
        guard block.count <= Int(CFS_MAXIMUM_ENVIRONMENT) else { return nil }
        let timeout = configuration.forkServerAnswerTimeout.components
        let answerTimeoutMilliseconds = Int32(
            clamping: timeout.seconds * 1000 + timeout.attoseconds / 1_000_000_000_000_000)
        let descriptors: [Int32] = [stdout, stderr, input, output]
        // The new worker is our child from the moment it exists: no orphan sweep until it is adopted.
        let environmentBlock = block
        return await requests.run {
            ProcessReaper.shared.creatingChildren {
                self.request(
                    descriptors: descriptors, joins: joins, environment: environmentBlock,
                    timeoutMilliseconds: answerTimeoutMilliseconds)
            }
        }
    }

    private func request(descriptors: [Int32], joins: [Int32], environment block: [UInt8], timeoutMilliseconds: Int32)
        -> ChildProcess?
    {
        guard joins.count <= Self.maximumJoins else { return nil }
        let exchange: (control: Int32, server: ChildProcess)? = guarded.withLock { guarded in
            guard case .ready(let control, let server, let hello) = guarded.state,
                joins.isEmpty || hello.forkServerJoinsCgroups
            else { return nil }
            guarded.exchanging = true
            return (control, server)
        }
        guard let exchange else { return nil }
        let answer = descriptors.withUnsafeBufferPointer { fds in
            joins.withUnsafeBufferPointer { joins in
                block.withUnsafeBytes { bytes in
                    cfs_request_worker(
                        exchange.control, fds.baseAddress, joins.baseAddress, joins.count,
                        bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count, timeoutMilliseconds)
                }
            }
        }
        let givenUp: String? = guarded.withLock { guarded in
            guarded.exchanging = false
            guard case .ready = guarded.state else {
                // Given up meanwhile (shutdown, the server's end), which left the socket to us:
                // whatever the answer, it is over.
                close(exchange.control)
                return nil
            }
            switch -answer {
            case EAGAIN, ENOMEM:
                // The system is short of processes or memory: this worker is spawned (or fails).
                return nil
            case let code where code > 0:
                exchange.server.signalGroup(SIGKILL)
                let why =
                    code == ETIMEDOUT
                    ? "it did not answer within \(configuration.forkServerAnswerTimeout)"
                    : errnoText(code)
                let reason =
                    "the worker fork server failed (\(why)) and was stopped; fine-mode workers are spawned from now on"
                guarded.giveUp(reason)
                return reason
            default:
                return nil
            }
        }
        if let givenUp { configuration.notice(givenUp) }
        guard answer > 0 else { return nil }
        do {
            return try ChildProcess.adopt(pid: answer)
        } catch {
            // No pidfd to be had (descriptors exhausted?): the new worker holds the caller's pipe
            // ends, which a spawned worker is about to get, so it must be gone first. It is our
            // child, so nobody else can reap it and its pid cannot be reused meanwhile.
            Glibc.kill(answer, SIGKILL)
            var status: Int32 = 0
            while waitpid(answer, &status, 0) < 0 && errno == EINTR {}
            return nil
        }
    }

    /// The server process ended (after ``start()`` returned it). True if it was still in use.
    @discardableResult
    func serverEnded(_ termination: Termination) -> Bool {
        let wasReady = isReady
        giveUp("the fork server ended: \(termination)")
        return wasReady
    }

    /// Pool shutdown: closing the socket tells the server to exit.
    func shutDown() {
        giveUp("the pool is shutting down")
        requests.stop()
    }

    /// SIGKILL for a server that outlived the shutdown grace period.
    func kill() {
        let server: ChildProcess? = guarded.withLock { guarded in
            if case .ready(_, let server, _) = guarded.state { return server }
            return nil
        }
        server?.signalGroup(SIGKILL)
        giveUp("the pool is shutting down")
    }

    private func giveUp(_ reason: String) {
        guarded.withLock { $0.giveUp(reason) }
    }

    private struct StartFailure: Error {
        let reason: String
        let server: ChildProcess?
    }

    private func launchAndGreet() throws -> (Int32, ChildProcess, WorkerHello) {
        var sockets: [Int32] = [-1, -1]
        let rc = cfs_socketpair(&sockets)
        guard rc == 0 else { throw StartFailure(reason: "socketpair: \(errnoText(-rc))", server: nil) }
        let worker: LaunchedWorker
        do {
            worker = try WorkerLauncher(configuration: configuration, forkServer: nil).spawnWorker(
                logDirectory: "workers/fork-server",
                environment: [workerForkServerVariable: "5"],
                extraDescriptors: [(sockets[1], 5)])
        } catch {
            close(sockets[0])
            close(sockets[1])
            throw StartFailure(reason: "\(error)", server: nil)
        }
        close(sockets[1])
        close(worker.toWorker)
        defer { close(worker.fromWorker) }
        do {
            let hello = try readHello(from: worker.fromWorker, server: worker.child)
            guard hello.protocolVersion == workerProtocolVersion else {
                throw StartFailure(
                    reason: "it speaks worker protocol version \(hello.protocolVersion), not \(workerProtocolVersion)",
                    server: worker.child)
            }
            guard hello.forkServer else {
                let program = configuration.program
                throw StartFailure(
                    reason: "'\(program)' does not offer to be a fork server (its hello has no fork_server)",
                    server: worker.child)
            }
            return (sockets[0], worker.child, hello)
        } catch let failure as StartFailure {
            close(sockets[0])
            throw failure
        } catch {
            close(sockets[0])
            throw StartFailure(reason: "\(error)", server: worker.child)
        }
    }

    /// Reads the first message, blocking, within the hello timeout.
    private func readHello(from descriptor: Int32, server: ChildProcess) throws -> WorkerHello {
        func failure(_ reason: String) -> StartFailure { StartFailure(reason: reason, server: server) }
        let deadline = ContinuousClock.now + configuration.helloTimeout
        var decoder = FrameDecoder(maximumFrameSize: 1024 * 1024)
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            if let frame = try decoder.next() {
                guard case .hello(let hello) = try FromWorker(decoding: frame) else {
                    throw failure("its first message is not a hello")
                }
                return hello
            }
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { throw failure("it did not say hello within \(configuration.helloTimeout)") }
            var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            let milliseconds = Int32(
                clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
            let ready = poll(&entry, 1, milliseconds)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { continue }
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw failure("it closed its pipe before saying hello") }
            decoder.feed(chunk[0..<count])
        }
    }
}
