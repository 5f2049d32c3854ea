import Testing
import WorkerWire

@testable import WorkerPool

/// The pool's scheduling without processes.
@Suite struct PoolStateTests {
    typealias Slot = PoolState.SlotID
    typealias Call = PoolState.CallID

    @Test func coarseQueuesUntilAWorkerIsReadyAndKeepsExclusiveCallsApart() {
        var state = PoolState(mode: .coarse(workers: 2), pipelineDepth: 2)
        #expect(state.start() == [.launch(Slot(raw: 0), call: nil), .launch(Slot(raw: 1), call: nil)])
        #expect(state.submit(Call(raw: 1), kind: .exclusive) == [])
        #expect(state.workerReady(Slot(raw: 0)) == [.send(Slot(raw: 0), runID: 1, Call(raw: 1))])
        // Worker 0 is taken by the exclusive call; pipelined calls wait for worker 1.
        #expect(state.submit(Call(raw: 2), kind: .pipelined) == [])
        #expect(state.submit(Call(raw: 3), kind: .pipelined) == [])
        #expect(state.submit(Call(raw: 4), kind: .pipelined) == [])
        #expect(
            state.workerReady(Slot(raw: 1)) == [
                .send(Slot(raw: 1), runID: 1, Call(raw: 2)), .send(Slot(raw: 1), runID: 2, Call(raw: 3)),
            ])
        let done = RunResult(id: 1, status: .ok, data: [1])
        #expect(
            state.resultsArrived(Slot(raw: 0), [done]) == [
                .complete(Call(raw: 1), .result(done)), .send(Slot(raw: 0), runID: 2, Call(raw: 4)),
            ])
    }

    @Test func aDeadWorkerFailsItsCallsAndIsReplaced() {
        var state = PoolState(mode: .coarse(workers: 1), pipelineDepth: 4)
        _ = state.start()
        _ = state.workerReady(Slot(raw: 0))
        _ = state.submit(Call(raw: 1), kind: .exclusive)
        #expect(state.submit(Call(raw: 2), kind: .exclusive) == [])
        #expect(
            state.workerEnded(Slot(raw: 0), why: "SIGSEGV") == [
                .complete(Call(raw: 1), .workerEnded("SIGSEGV")), .launch(Slot(raw: 1), call: nil),
            ])
        #expect(state.workerReady(Slot(raw: 1)) == [.send(Slot(raw: 1), runID: 1, Call(raw: 2))])
    }

    @Test func aWorkerThatNeverBecomesReadyIsNotRestartedUntilACallComes() {
        var state = PoolState(mode: .coarse(workers: 1), pipelineDepth: 4)
        _ = state.start()
        #expect(state.submit(Call(raw: 1), kind: .exclusive) == [])
        #expect(state.workerEnded(Slot(raw: 0), why: "garbage") == [.complete(Call(raw: 1), .unavailable("garbage"))])
        #expect(state.workerCount == 0)
        #expect(state.submit(Call(raw: 2), kind: .pipelined) == [.launch(Slot(raw: 0), call: nil)])
    }

    @Test func fineModeStartsAWorkerPerCallAndClosesItAfterTheResult() {
        var state = PoolState(mode: .fine(maximumWorkers: 1), pipelineDepth: 4)
        #expect(state.start() == [])
        #expect(state.submit(Call(raw: 1), kind: .exclusive) == [.launch(Slot(raw: 0), call: Call(raw: 1))])
        #expect(state.submit(Call(raw: 2), kind: .exclusive) == [])
        #expect(state.workerReady(Slot(raw: 0)) == [.send(Slot(raw: 0), runID: 1, Call(raw: 1))])
        let done = RunResult(id: 1, status: .ok)
        #expect(
            state.resultsArrived(Slot(raw: 0), [done]) == [
                .complete(Call(raw: 1), .result(done)), .close(Slot(raw: 0)),
            ])
        #expect(
            state.workerEnded(Slot(raw: 0), why: "exited with status 0") == [.launch(Slot(raw: 1), call: Call(raw: 2))])
    }

    /// Fine mode: a call whose worker was started but has not said hello (it may already be
    /// TASK_RUNNING, its worker forked) is cancelled before it started, and its worker closed.
    @Test func aCallWhoseWorkerIsStartingIsCancelledBeforeItStarted() {
        var state = PoolState(mode: .fine(maximumWorkers: 2), pipelineDepth: 1)
        #expect(
            state.submit(Call(raw: 1), kind: .exclusive, function: "f") == [.launch(Slot(raw: 0), call: Call(raw: 1))])
        #expect(state.workerLaunched(Slot(raw: 0), offering: ["g"]) == [])
        #expect(state.workerLaunched(Slot(raw: 0), offering: ["f", "g"]) == [.started(Call(raw: 1))])
        #expect(
            state.cancel(Call(raw: 1)) == [
                .complete(Call(raw: 1), .cancelled("was cancelled before it started")), .close(Slot(raw: 0)),
            ])
        #expect(state.workerLaunched(Slot(raw: 0), offering: ["f"]) == [])
        #expect(state.workerReady(Slot(raw: 0)) == [])
    }

    @Test func stopsCancelOrKillRunningCallsAndWithdrawWaitingOnes() {
        var state = PoolState(mode: .coarse(workers: 1), pipelineDepth: 1)
        _ = state.start()
        _ = state.workerReady(Slot(raw: 0))
        _ = state.submit(Call(raw: 1), kind: .exclusive)
        _ = state.submit(Call(raw: 2), kind: .exclusive)
        #expect(state.cancel(Call(raw: 1)) == [.cancel(Slot(raw: 0), runID: 1)])
        #expect(state.kill(Call(raw: 1)) == [.kill(Slot(raw: 0))])
        #expect(state.cancel(Call(raw: 2)) == [.complete(Call(raw: 2), .cancelled("stopped before a worker ran it"))])
        #expect(state.shutdown() == [.close(Slot(raw: 0))])
        #expect(
            state.submit(Call(raw: 3), kind: .exclusive) == [
                .complete(Call(raw: 3), .unavailable("the worker pool is shut down"))
            ])
        #expect(!state.isFinished)
        _ = state.workerEnded(Slot(raw: 0), why: "exited")
        #expect(state.isFinished)
    }
}

extension PoolStateTests {
    /// Pipelined calls go to a worker in batches: it is topped up once down to half its depth.
    @Test func aWorkerIsToppedUpOnceDownToHalfItsPipeline() {
        var state = PoolState(mode: .coarse(workers: 1), pipelineDepth: 4)
        _ = state.start()
        _ = state.workerReady(Slot(raw: 0))
        #expect(
            state.submit((1...7).map { (Call(raw: $0), .pipelined) })
                == (1...4).map { .send(Slot(raw: 0), runID: $0, Call(raw: $0)) })
        let results = (1...4).map { RunResult(id: $0, status: .ok) }
        #expect(state.resultsArrived(Slot(raw: 0), [results[0]]) == [.complete(Call(raw: 1), .result(results[0]))])
        #expect(
            state.resultsArrived(Slot(raw: 0), [results[1]]) == [
                .complete(Call(raw: 2), .result(results[1])), .send(Slot(raw: 0), runID: 5, Call(raw: 5)),
                .send(Slot(raw: 0), runID: 6, Call(raw: 6)),
            ])
        // The last waiting call goes out with the next top-up, once two more results came.
        #expect(state.resultsArrived(Slot(raw: 0), [results[2]]) == [.complete(Call(raw: 3), .result(results[2]))])
        #expect(
            state.resultsArrived(Slot(raw: 0), [results[3]]) == [
                .complete(Call(raw: 4), .result(results[3])), .send(Slot(raw: 0), runID: 7, Call(raw: 7)),
            ])
    }

    @Test func aWaitingExclusiveCallIsNotStarvedByPipelinedCalls() {
        var state = PoolState(mode: .coarse(workers: 1), pipelineDepth: 2)
        _ = state.start()
        _ = state.workerReady(Slot(raw: 0))
        #expect(
            state.submit([(Call(raw: 1), .pipelined), (Call(raw: 2), .pipelined), (Call(raw: 3), .pipelined)]) == [
                .send(Slot(raw: 0), runID: 1, Call(raw: 1)), .send(Slot(raw: 0), runID: 2, Call(raw: 2)),
            ])
        #expect(state.submit(Call(raw: 4), kind: .exclusive) == [])
        let first = RunResult(id: 1, status: .ok)
        // Call 3 waits: the worker drains for the exclusive call.
        #expect(state.resultsArrived(Slot(raw: 0), [first]) == [.complete(Call(raw: 1), .result(first))])
        let second = RunResult(id: 2, status: .ok)
        #expect(
            state.resultsArrived(Slot(raw: 0), [second]) == [
                .complete(Call(raw: 2), .result(second)), .send(Slot(raw: 0), runID: 3, Call(raw: 4)),
            ])
    }

    /// The pool gives each worker's pipeline a depth by its pace, with the results it hears of:
    /// deeper, the worker is topped up further; shallower, it gets nothing until it has run down.
    @Test func eachWorkersPipelineTakesTheDepthItIsGiven() {
        var state = PoolState(mode: .coarse(workers: 1), pipelineDepth: 2)
        _ = state.start()
        _ = state.workerReady(Slot(raw: 0))
        #expect(state.pipelineDepth(of: Slot(raw: 0)) == 2)
        #expect(
            state.submit((1...12).map { (Call(raw: $0), .pipelined) })
                == (1...2).map { .send(Slot(raw: 0), runID: $0, Call(raw: $0)) })
        #expect(state.runsPipelinedCalls(Slot(raw: 0)))
        let first = RunResult(id: 1, status: .ok)
        #expect(
            state.resultsArrived(Slot(raw: 0), [first], pipelineDepth: 6)
                == [.complete(Call(raw: 1), .result(first))]
                + (3...7).map { .send(Slot(raw: 0), runID: UInt64($0), Call(raw: UInt64($0))) })
        #expect(state.pipelineDepth(of: Slot(raw: 0)) == 6)
        // Shallower: 5 in flight, and nothing more until the worker is down to half of 2.
        let results = (2...6).map { RunResult(id: $0, status: .ok) }
        #expect(
            state.resultsArrived(Slot(raw: 0), Array(results[0...2]), pipelineDepth: 2)
                == results[0...2].map { .complete(Call(raw: $0.id), .result($0)) })
        #expect(state.resultsArrived(Slot(raw: 0), [results[3]]) == [.complete(Call(raw: 5), .result(results[3]))])
        #expect(
            state.resultsArrived(Slot(raw: 0), [results[4]])
                == [.complete(Call(raw: 6), .result(results[4])), .send(Slot(raw: 0), runID: 8, Call(raw: 8))])
    }

    /// However slow its runs, a worker that runs several at once is given enough to keep them busy.
    @Test func aWorkerRunningSeveralAtOnceKeepsTwiceAsManyInFlight() {
        var state = PoolState(mode: .coarse(workers: 1), pipelineDepth: 32)
        _ = state.start()
        _ = state.workerReady(
            Slot(raw: 0), hello: WorkerHello(workerName: "w", functions: [], concurrency: 4))
        _ = state.submit((1...40).map { (Call(raw: $0), .pipelined) })
        let first = RunResult(id: 1, status: .ok)
        _ = state.resultsArrived(Slot(raw: 0), [first], pipelineDepth: 2)
        #expect(state.pipelineDepth(of: Slot(raw: 0)) == 8)
        #expect(!state.runsPipelinedCalls(Slot(raw: 1)))
        // Up to the most a worker may hold, which the starting depth does not bound.
        func depth(concurrency: UInt32) -> Int? {
            var wide = PoolState(mode: .coarse(workers: 1), pipelineDepth: 32, maximumPipelineDepth: 256)
            _ = wide.start()
            _ = wide.workerReady(
                Slot(raw: 0), hello: WorkerHello(workerName: "w", functions: [], concurrency: concurrency))
            _ = wide.submit((1...40).map { (Call(raw: $0), .pipelined) })
            _ = wide.resultsArrived(Slot(raw: 0), [first], pipelineDepth: 2)
            return wide.pipelineDepth(of: Slot(raw: 0))
        }
        #expect(depth(concurrency: 100) == 200)
        #expect(depth(concurrency: 1_000) == 256)
    }
}
