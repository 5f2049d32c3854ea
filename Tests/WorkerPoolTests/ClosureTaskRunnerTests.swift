import Foundation
import MesosProto
import Testing
import WorkerPool

@testable import SparkExecutor
@testable import TaskRunning

#if canImport(Glibc)
    import Glibc
#endif

@Suite("Closure tasks on real demo-worker processes")
struct ClosureTaskRunnerTests {
    @Test(arguments: PoolMode.allCases)
    func returnsTheClosureResult(mode: PoolMode) async throws {
        try await withRunner(try poolConfiguration(mode)) { _, runner in
            let echo = await run(runner, closureTask("t-echo", "echo", "hello"))
            #expect(echo == .succeeded(data: Array("hello".utf8), message: "closure 'echo' returned 5 bytes"))
            let words = await run(runner, closureTask("t-words", "wordcount", "b a b"))
            #expect(
                words == .succeeded(data: Array("a 1\nb 2\n".utf8), message: "closure 'wordcount' returned 8 bytes"))
            guard case .succeeded(let data?, _, _) = await run(runner, closureTask("t-pi", "pi", "200000")) else {
                Issue.record("pi did not succeed")
                return
            }
            let pi = try #require(Double(String(decoding: data, as: UTF8.self)))
            #expect(abs(pi - 3.14159) < 0.05)
        }
    }

    @Test(arguments: PoolMode.allCases)
    func acceptsTheJSONForm(mode: PoolMode) async throws {
        try await withRunner(try poolConfiguration(mode)) { _, runner in
            var task = closureTask("t-json", "echo", "")
            task.data = Data(#"  {"function": "echo", "payload": "aGk="}"#.utf8)
            #expect(
                await run(runner, task)
                    == .succeeded(data: Array("hi".utf8), message: "closure 'echo' returned 2 bytes"))
        }
    }

    @Test(arguments: PoolMode.allCases)
    func aThrowingClosureFailsTheTask(mode: PoolMode) async throws {
        try await withRunner(try poolConfiguration(mode)) { _, runner in
            let outcome = await run(runner, closureTask("t-fail", "fail", "disk full"))
            #expect(outcome == .failed(reason: .commandExecutorFailed, message: "closure 'fail' threw: disk full"))
        }
    }

    @Test(arguments: PoolMode.allCases)
    func aCrashingWorkerFailsTheTaskAndIsReplaced(mode: PoolMode) async throws {
        try await withRunner(try poolConfiguration(mode)) { _, runner in
            // Queued together: the echo must survive the crashes around it.
            async let segv = run(runner, closureTask("t-segv", "crash", ""))
            async let exit7 = run(runner, closureTask("t-exit", "crash", "7"))
            async let echo = run(runner, closureTask("t-after", "echo", "still here"))
            let (segvOutcome, exitOutcome, echoOutcome) = await (segv, exit7, echo)
            guard case .failed(.commandExecutorFailed, let segvText) = segvOutcome,
                case .failed(.commandExecutorFailed, let exitText) = exitOutcome
            else {
                Issue.record("unexpected outcomes: \(segvOutcome.text), \(exitOutcome.text)")
                return
            }
            #expect(segvText.contains("terminated by signal SIGSEGV (11)"), "\(segvText)")
            #expect(exitText.contains("exited with status 7"), "\(exitText)")
            #expect(
                echoOutcome == .succeeded(data: Array("still here".utf8), message: "closure 'echo' returned 10 bytes"))
            #expect(
                await run(runner, closureTask("t-later", "echo", "x"))
                    == .succeeded(data: [120], message: "closure 'echo' returned 1 bytes"))
        }
    }

    @Test(arguments: PoolMode.allCases)
    func anUnknownFunctionIsAnInvalidTask(mode: PoolMode) async throws {
        try await withRunner(try poolConfiguration(mode)) { _, runner in
            let outcome = await run(runner, closureTask("t-unknown", "nope", ""))
            guard case .error(.taskInvalid, let message) = outcome else {
                Issue.record("unexpected outcome \(outcome.text)")
                return
            }
            #expect(message.contains("no function 'nope'") && message.contains("echo"), "\(message)")
        }
    }

    @Test func unparseableDataIsAnInvalidTask() async throws {
        try await withRunner(try poolConfiguration(.fine())) { _, runner in
            var task = closureTask("t-bad", "echo", "")
            task.data = Data(#"{"function": 3"#.utf8)
            guard case .error(.taskInvalid, let json) = await run(runner, task) else {
                Issue.record("bad JSON was not rejected")
                return
            }
            #expect(json.contains("JSON"), "\(json)")
            task.data = Data([0xff, 0xff, 0xff])
            guard case .error(.taskInvalid, let binary) = await run(runner, task) else {
                Issue.record("bad protobuf was not rejected")
                return
            }
            #expect(binary.contains("not a Closure"), "\(binary)")
            // An environment no process can hold (a fine-mode worker's is the closure's).
            for (environment, says) in [
                (#"{"": "x"}"#, "the Closure's environment variable name '' is not valid"),
                (#"{"A=B": "x"}"#, "the Closure's environment variable name 'A=B' is not valid"),
                (#"{"A": "x\u0000y"}"#, "the Closure's environment variable A holds a NUL character"),
            ] {
                task.data = Data(#"{"function": "echo", "environment": \#(environment)}"#.utf8)
                #expect(await run(runner, task) == .error(reason: .taskInvalid, message: says), "\(environment)")
            }
            var command = Mesos_V1_TaskInfo()
            command.taskID.value = "t-cmd"
            command.command.value = "true"
            guard case .error(.taskInvalid, _) = await run(runner, command) else {
                Issue.record("a command task without a command runner was not rejected")
                return
            }
        }
    }

    @Test(arguments: PoolMode.allCases, ["garbage", "badversion"])
    func aWorkerBreakingTheProtocolIsStopped(mode: PoolMode, misbehaviour: String) async throws {
        let configuration = try poolConfiguration(
            mode, environment: ["DEMO_WORKER_MODE": misbehaviour])
        try await withRunner(configuration) { _, runner in
            let outcome = await run(runner, closureTask("t-\(misbehaviour)", "echo", "x"))
            guard case .launchFailed(.containerLaunchFailed, let message) = outcome else {
                Issue.record("unexpected outcome \(outcome.text)")
                return
            }
            let expected =
                misbehaviour == "garbage"
                ? "not RecordIO frames" : "protocol version 99; this executor speaks version 1"
            #expect(message.contains(expected) && message.contains("it was stopped"), "\(message)")
        }
    }

    /// A worker that exits before its hello (an import or a file it needs is missing): the task's
    /// message says so, with the last line it wrote to stderr.
    @Test func aWorkerThatEndsBeforeItsHelloIsReportedWithItsLastWords() async throws {
        let configuration = try poolConfiguration(.fine(), environment: ["DEMO_WORKER_MODE": "crash"])
        try await withRunner(configuration) { _, runner in
            let outcome = await run(runner, closureTask("t-crash", "echo", "x"))
            guard case .launchFailed(.containerLaunchFailed, let message) = outcome else {
                Issue.record("unexpected outcome \(outcome.text)")
                return
            }
            #expect(
                message.hasSuffix(
                    "closed its pipe before saying hello (exited with status 3); its stderr ends: demo-worker: cannot start: no model at /models/demo"
                ), "\(message)")
        }
    }

    @Test func aWorkerThatNeverSaysHelloIsStopped() async throws {
        let configuration = try poolConfiguration(
            .fine(), environment: ["DEMO_WORKER_MODE": "silent"], helloTimeout: .milliseconds(300))
        try await withRunner(configuration) { _, runner in
            let outcome = await run(runner, closureTask("t-silent", "echo", "x"))
            guard case .launchFailed(_, let message) = outcome else {
                Issue.record("unexpected outcome \(outcome.text)")
                return
            }
            #expect(message.contains("did not say hello within"), "\(message)")
        }
    }

    @Test(arguments: PoolMode.allCases)
    func terminateCancelsTheClosure(mode: PoolMode) async throws {
        try await withRunner(try poolConfiguration(mode)) { _, runner in
            let task = start(runner, closureTask("t-sleep", "sleep", "60000"))
            await task.waitUntilStarted()
            task.control.request(.terminate)
            // Depending on whether the worker had begun the run, the cancel stops it or drops it.
            let outcome = await task.outcome.value
            guard case .failed(.commandExecutorFailed, let message) = outcome else {
                Issue.record("unexpected outcome \(outcome.text)")
                return
            }
            #expect(
                ["closure 'sleep' was cancelled", "closure 'sleep' was cancelled before it started"].contains(message),
                "\(message)")
        }
    }

    /// The Swift SDK runs a closure on the thread that read its request, up to its first
    /// suspension: a cancel must still reach a closure that never suspends.
    @Test(arguments: PoolMode.allCases)
    func aClosureThatNeverSuspendsSeesItsCancel(mode: PoolMode) async throws {
        try await withRunner(try poolConfiguration(mode)) { _, runner in
            let task = try await startRunning(runner, "t-busy", "busy", "60000")
            task.control.request(.terminate)
            #expect(
                await task.outcome.value
                    == .failed(reason: .commandExecutorFailed, message: "closure 'busy' was cancelled"))
            #expect(
                await run(runner, closureTask("t-next", "echo", "ok"))
                    == .succeeded(data: Array("ok".utf8), message: "closure 'echo' returned 2 bytes"))
        }
    }

    @Test(arguments: PoolMode.allCases)
    func aClosureIgnoringCancelIsKilledAfterTheGraceAndItsWorkerReplaced(mode: PoolMode) async throws {
        try await withRunner(try poolConfiguration(mode)) { pool, runner in
            let task = try await startRunning(runner, "t-hang", "hang", "60000")
            task.control.request(.terminate)
            // The grace period the runtime would grant; `hang` ignores the cancel whatever it is.
            try await Task.sleep(for: .milliseconds(200))
            task.control.request(.forceKill)
            let outcome = await task.outcome.value
            guard case .failed(_, let message) = outcome else {
                Issue.record("unexpected outcome \(outcome.text)")
                return
            }
            #expect(message.contains("SIGKILL"), "\(message)")
            #expect(
                await run(runner, closureTask("t-next", "echo", "ok"))
                    == .succeeded(data: Array("ok".utf8), message: "closure 'echo' returned 2 bytes"))
            if mode == .coarse { #expect(await pool.workerCount == 2) }
        }
    }

    /// A result's file is always new: a second result of the same name (a mini-task id sent again,
    /// a task named as a mini-task's file) gets a file of its own, and the first stays as it was.
    @Test func aResultFileIsNeverWrittenOver() throws {
        var template = Array("/tmp/large-results-XXXXXX".utf8CString)
        let sandbox = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { try? FileManager.default.removeItem(atPath: sandbox) }
        let store = LargeResults(sandbox: sandbox, limit: 2)
        #expect(store.store(Array("ok".utf8), name: "mini-m3") == .inline(Array("ok".utf8)))
        let stored = ["first", "second", "third"].map { store.store(Array($0.utf8), name: "mini-m3") }
        #expect(
            stored == [
                .file(path: sandbox + "/results/mini-m3", size: 5),
                .file(path: sandbox + "/results/mini-m3.2", size: 6),
                .file(path: sandbox + "/results/mini-m3.3", size: 5),
            ])
        #expect(FileManager.default.contents(atPath: sandbox + "/results/mini-m3") == Data("first".utf8))
        #expect(FileManager.default.contents(atPath: sandbox + "/results/mini-m3.2") == Data("second".utf8))
        #expect(FileManager.default.contents(atPath: sandbox + "/results/mini-m3.3") == Data("third".utf8))
        // Closed to other users (a task of another user let through the sandbox): the agent,
        // root, serves them to the framework.
        var status = stat()
        #expect(stat(sandbox + "/results", &status) == 0 && status.st_mode & 0o777 == 0o750)
        #expect(stat(sandbox + "/results/mini-m3", &status) == 0 && status.st_mode & 0o777 == 0o640)
        // A link in the place of `results` is not followed: nothing is stored through it.
        let elsewhere = LargeResults(sandbox: sandbox + "/other", limit: 2)
        #expect(mkdir(sandbox + "/other", 0o750) == 0 && symlink(sandbox + "/results", sandbox + "/other/results") == 0)
        #expect(
            elsewhere.store(Array("fourth".utf8), name: "m4")
                == .failed("cannot open \(sandbox)/other/results: it is not a directory (a link?)"))
        #expect(!FileManager.default.fileExists(atPath: sandbox + "/results/m4"))
    }

    /// A result that does not fit on the sandbox's disk fails to be stored, and no part of it is
    /// left where a framework would take it for the whole (root: a small tmpfs is the sandbox).
    @Test(.enabled(if: geteuid() == 0, "mounting a tmpfs needs root"))
    func aResultTheDiskCannotHoldLeavesNoPartBehind() throws {
        var template = Array("/tmp/large-results-XXXXXX".utf8CString)
        let sandbox = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { try? FileManager.default.removeItem(atPath: sandbox) }
        try #require(mount("tmpfs", sandbox, "tmpfs", 0, "size=1m,mode=0755") == 0)
        defer { umount2(sandbox, Int32(MNT_DETACH)) }
        let stored = LargeResults(sandbox: sandbox, limit: 2).store([UInt8](repeating: 7, count: 2 << 20), name: "big")
        #expect(stored == .failed("cannot write \(sandbox)/results/big: No space left on device"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: sandbox + "/results").isEmpty)
    }

    @Test func largeResultsGoToAFileInTheSandbox() async throws {
        try await withPool(try poolConfiguration(.coarse(workers: 1))) { pool in
            let runner = ClosureTaskRunner(pool: pool, sandbox: pool.configuration.sandbox, resultSizeLimit: 1000)
            let payload = String(repeating: "x", count: 5000)
            let outcome = await run(runner, closureTask("t/large", "echo", payload))
            // The id made a file name no other id shares (`t_large` would be another task's).
            let path = pool.configuration.sandbox + "/results/t_large-41b71e2c85a5b433"
            #expect(
                outcome
                    == .succeeded(
                        data: nil,
                        message: "closure 'echo' returned 5000 bytes (over the 1000-byte limit), written to \(path)",
                        dataFile: path))
            #expect(FileManager.default.contents(atPath: path) == Data(payload.utf8))
        }
    }
}

extension ClosureTaskRunnerTests {
    @Test func shutdownKillsWorkersThatOutliveTheGracePeriod() async throws {
        try await withSandbox { sandbox in
            var configuration = try poolConfiguration(.coarse(workers: 1))
            configuration.sandbox = sandbox
            configuration.shutdownGracePeriod = .milliseconds(200)
            let pool = WorkerPool(configuration: configuration)
            let runner = ClosureTaskRunner(pool: pool, sandbox: configuration.sandbox)
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await pool.run() }
                let task = try await startRunning(runner, "t-stuck", "hang", "60000")
                await pool.shutdown()
                // run() returns only once the stuck worker was killed after the grace period.
                try await group.next()
                let outcome = await task.outcome.value
                guard case .failed(_, let message) = outcome else {
                    Issue.record("unexpected outcome \(outcome.text)")
                    return
                }
                #expect(message.contains("SIGKILL"), "\(message)")
                #expect(await pool.workerCount == 0)
            }
        }
    }
}
