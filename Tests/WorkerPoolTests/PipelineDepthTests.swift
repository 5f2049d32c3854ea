import Testing

import WorkerWire

@testable import WorkerPool

/// A coarse worker's pipeline of mini-tasks follows its pace (``PipelinePacer``), through the pool.
@Suite struct PipelineDepthTests {
    /// Slow mini-tasks (10 ms each, far beyond the pipeline's budget of a few milliseconds) are
    /// not queued deep in their worker: once it has worked off the 32 it started with, it holds
    /// at most 2, so a Mesos task given to it waits for at most those. Machine speed only makes
    /// the runs slower, never the depth greater.
    @Test func slowMiniTasksAreNotQueuedDeepInTheirWorker() async throws {
        let configuration = try poolConfiguration(.coarse(workers: 1))
        try await withPool(configuration) { pool in
            let requests = (0..<44).map { CallRequest(taskID: "m\($0)", function: "sleep", payload: Array("10".utf8)) }
            var finished = 0
            var checked = false
            for await endings in await pool.runPipelined(requests) {
                for ending in endings {
                    // Each ending names its request, so that the caller need not keep the batch.
                    #expect(ending.taskID == "m\(ending.index)" && ending.function == "sleep")
                    guard case .result(let run) = ending.completion, run.status == .ok else {
                        Issue.record("mini-task \(ending.index) ended \(ending.completion)")
                        continue
                    }
                }
                finished += endings.count
                if finished >= 36 && !checked {
                    checked = true
                    let pipelines = await pool.pipelines
                    #expect(pipelines.count == 1)
                    #expect(pipelines.allSatisfy { $0.depth == 2 && $0.inFlight <= 2 }, "\(pipelines)")
                }
            }
            #expect(finished == 44)
            #expect(checked)
        }
    }
}
