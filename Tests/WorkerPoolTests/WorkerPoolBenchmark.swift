import Foundation
import Synchronization
import Testing
import WorkerPool

@testable import SparkExecutor
@testable import TaskRunning

/// Throughput and latency figures, printed next to the floors measured in limits.md. Never a
/// timing assertion. Run with `WORKER_POOL_BENCHMARK=1 swift test --filter WorkerPoolBenchmark`
/// (a release build gives the meaningful figures).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["WORKER_POOL_BENCHMARK"] == "1"), .serialized)
struct WorkerPoolBenchmark {
    static func report(_ name: String, _ value: String, floor: String) {
        print(
            "BENCH \(name.padding(toLength: 44, withPad: " ", startingAt: 0)) \(value.padding(toLength: 22, withPad: " ", startingAt: 0)) floor: \(floor)"
        )
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func median(_ values: [Double]) -> Double { values.sorted()[values.count / 2] }

    /// One task at a time: launch → started (run handed to a fresh worker after its hello) and the whole task.
    @Test func fineModeLatency() async throws {
        try await withRunner(try poolConfiguration(.fine(maximumWorkers: 4))) { _, runner in
            var starts: [Double] = []
            var totals: [Double] = []
            for i in 0..<100 {
                let clock = ContinuousClock()
                let began = clock.now
                let task = start(runner, closureTask("lat-\(i)", "echo", "x"))
                await task.waitUntilStarted()
                let started = clock.now
                _ = await task.outcome.value
                starts.append(Self.seconds(started - began) * 1000)
                totals.append(Self.seconds(clock.now - began) * 1000)
            }
            Self.report(
                "fine: launch -> started (median)", String(format: "%.2f ms", Self.median(starts)),
                floor: "≈0.12 ms spawn-only; 1.5–2 ms with a Swift worker's hello")
            Self.report(
                "fine: whole closure task (median)", String(format: "%.2f ms", Self.median(totals)),
                floor: "≥0.5 ms process lifecycle (1a)")
        }
    }

    @Test func fineModeThroughput() async throws {
        let count = 400
        try await withRunner(try poolConfiguration(.fine(maximumWorkers: 8))) { _, runner in
            let elapsed = await ContinuousClock().measure {
                await withTaskGroup(of: Void.self) { group in
                    for i in 0..<count { group.addTask { _ = await run(runner, closureTask("f-\(i)", "echo", "x")) } }
                }
            }
            Self.report(
                "fine: closure tasks/s (8 workers at once)",
                String(format: "%.0f /s", Double(count) / Self.seconds(elapsed)), floor: "≈2000 processes/s (1a)")
        }
    }

    @Test func coarseClosures() async throws {
        try await withRunner(try poolConfiguration(.coarse(workers: 2))) { _, runner in
            _ = await run(runner, closureTask("warm", "echo", "x"))
            var sequential: [Double] = []
            for i in 0..<500 {
                let clock = ContinuousClock()
                let began = clock.now
                _ = await run(runner, closureTask("s-\(i)", "echo", "x"))
                sequential.append(Self.seconds(clock.now - began) * 1e6)
            }
            Self.report(
                "coarse: one closure task round trip (median)", String(format: "%.0f µs", Self.median(sequential)),
                floor: "40.6 µs per pipe round trip (2a)")
            let count = 4000
            let elapsed = await ContinuousClock().measure {
                await withTaskGroup(of: Void.self) { group in
                    for i in 0..<count { group.addTask { _ = await run(runner, closureTask("c-\(i)", "echo", "x")) } }
                }
            }
            Self.report(
                "coarse: closure tasks/s (2 workers)", String(format: "%.0f /s", Double(count) / Self.seconds(elapsed)),
                floor: "≈60k/s one loop, 2 workers, 1 in flight (2d)")
        }
    }

    @Test func miniTasks() async throws {
        let batches = 200
        let perBatch = 500
        let received = Atomic(0)
        try await withPool(try poolConfiguration(.coarse(workers: 2))) { pool in
            let dispatcher = MiniTaskDispatcher(pool: pool, sandbox: pool.configuration.sandbox) { _ in
                received.add(1, ordering: .relaxed)
            }
            let batch = miniBatch((0..<perBatch).map { (id: "m\($0)", function: "echo", payload: "x") })
            await dispatcher.handle(batch)
            let elapsed = await ContinuousClock().measure {
                await withTaskGroup(of: Void.self) { group in
                    for _ in 0..<batches { group.addTask { await dispatcher.handle(batch) } }
                }
            }
            let total = Double(batches * perBatch)
            Self.report(
                "coarse: mini-tasks/s (batches of \(perBatch))",
                String(format: "%.0f /s", total / Self.seconds(elapsed)),
                floor: "≈25k/s per worker unpipelined (2a); 0.48–0.74M msg/s pipelined (2e)")
            Self.report(
                "coarse: result messages per mini-task",
                String(format: "%.3f", Double(received.load(ordering: .relaxed)) / (total + Double(perBatch))),
                floor: "—")
        }
    }
}
