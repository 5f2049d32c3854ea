import Foundation
import MesosProto
import Testing
import WorkerProtocol
import WorkerWire

@testable import SparkExecutor
@testable import TaskRunning
@testable import WorkerPool

/// A function the worker's hello does not offer is refused before anything is sent to the worker,
/// so the task never reports TASK_RUNNING: TASK_ERROR / REASON_TASK_INVALID, naming the function
/// and what the worker offers.
@Suite struct UnknownFunctionTests {
    typealias Slot = PoolState.SlotID
    typealias Call = PoolState.CallID

    static let hello = WorkerHello(workerName: "w", functions: ["echo", "pi"], concurrency: 4)
    static let refusal = PoolState.Completion.result(
        RunResult(id: 0, status: .unknownFunction, error: "worker 'w' has no function 'nope' (it offers: echo, pi)"))

    @Test func coarseWorkersRefuseWithoutTakingTheCall() {
        var state = PoolState(mode: .coarse(workers: 1), pipelineDepth: 2)
        _ = state.start()
        #expect(state.submit(Call(raw: 1), kind: .exclusive, function: "nope") == [])
        #expect(state.workerReady(Slot(raw: 0), hello: Self.hello) == [.complete(Call(raw: 1), Self.refusal)])
        // The worker is still free: neither the exclusive call nor the pipelined ones were sent to it.
        #expect(
            state.submit([
                (Call(raw: 2), .pipelined, "nope"), (Call(raw: 3), .pipelined, "echo"),
                (Call(raw: 4), .pipelined, "pi"),
            ]) == [
                .complete(Call(raw: 2), Self.refusal), .send(Slot(raw: 0), runID: 1, Call(raw: 3)),
                .send(Slot(raw: 0), runID: 2, Call(raw: 4)),
            ])
        #expect(state.submit(Call(raw: 5), kind: .exclusive, function: "echo") == [])
    }

    @Test func aFreshWorkerRefusesAfterItsHelloAndIsClosed() {
        var state = PoolState(mode: .fine(maximumWorkers: 1), pipelineDepth: 1)
        #expect(
            state.submit(Call(raw: 1), kind: .exclusive, function: "nope") == [
                .launch(Slot(raw: 0), call: Call(raw: 1))
            ])
        #expect(state.submit(Call(raw: 2), kind: .exclusive, function: "echo") == [])
        #expect(
            state.workerReady(Slot(raw: 0), hello: Self.hello) == [
                .complete(Call(raw: 1), Self.refusal), .close(Slot(raw: 0)),
            ])
        #expect(state.workerEnded(Slot(raw: 0), why: "exited") == [.launch(Slot(raw: 1), call: Call(raw: 2))])
        #expect(state.workerReady(Slot(raw: 1), hello: Self.hello) == [.send(Slot(raw: 1), runID: 1, Call(raw: 2))])
    }

    @Test func aHelloWithoutFunctionsIsNotChecked() {
        var state = PoolState(mode: .coarse(workers: 1), pipelineDepth: 2)
        _ = state.start()
        _ = state.workerReady(Slot(raw: 0), hello: WorkerHello(workerName: "w", functions: [], concurrency: 1))
        #expect(
            state.submit(Call(raw: 1), kind: .exclusive, function: "anything")
                == [.send(Slot(raw: 0), runID: 1, Call(raw: 1))])
    }

    /// With real demo workers in every mode: no TASK_RUNNING, the old assertions still hold, and
    /// the pool still runs known functions afterwards.
    @Test(arguments: PoolMode.allCases)
    func anUnknownFunctionNeverStarts(mode: PoolMode) async throws {
        try await withRunner(try poolConfiguration(mode)) { _, runner in
            let task = start(runner, closureTask("t-unknown", "nope", ""))
            let outcome = await task.outcome.value
            var started = false
            for await _ in task.started { started = true }
            #expect(!started, "TASK_RUNNING would have been sent")
            guard case .error(.taskInvalid, let message) = outcome else {
                Issue.record("unexpected outcome \(outcome.text)")
                return
            }
            #expect(message.hasPrefix("worker 'demo-worker' has no function 'nope' (it offers: "), "\(message)")
            #expect(message.contains("echo") && message.contains("pi"), "\(message)")
            #expect(
                await run(runner, closureTask("t-echo", "echo", "x"))
                    == .succeeded(data: [120], message: "closure 'echo' returned 1 bytes"))
        }
    }

    @Test(arguments: [WorkerPoolConfiguration.Mode.coarse(workers: 1), .fine(maximumWorkers: 2)])
    func anUnknownMiniTaskFunctionFails(mode: WorkerPoolConfiguration.Mode) async throws {
        let sent = SentMessages()
        try await withPool(try poolConfiguration(mode)) { pool in
            let dispatcher = MiniTaskDispatcher(pool: pool, sandbox: pool.configuration.sandbox) { sent.send($0) }
            await dispatcher.handle(miniBatch([("m1", "nope", ""), ("m2", "echo", "hi")]))
        }
        let results = try sent.results().sorted { $0.id < $1.id }
        #expect(results.map(\.id) == ["m1", "m2"])
        #expect(results.first?.state == "FAILED")
        #expect(results.first?.error.hasPrefix("worker 'demo-worker' has no function 'nope'") == true)
        #expect(results.last?.data == Data("hi".utf8))
    }
}
