import Testing

@testable import WorkerPool

/// How deep a coarse worker's pipeline of mini-tasks is, by its pace (times in nanoseconds).
@Suite struct PipelinePacerTests {
    /// A budget of 1 ms, between 2 and 256 runs, 32 to start with.
    func pacer() -> PipelinePacer {
        PipelinePacer(budgetNanoseconds: 1_000_000, initial: 32, minimum: 2, maximum: 256)
    }

    @Test func aWorkerKeepsItsStartingDepthUntilItsPaceIsMeasured() {
        var pacer = pacer()
        #expect(pacer.depth == 32)
        // Results with no run sent before them (or only a Mesos task's) measure nothing.
        #expect(pacer.arrived(10, at: 5_000) == 32)
        pacer.sent(at: 10_000)
        pacer.exclusive()
        #expect(pacer.arrived(1, at: 9_000_000) == 32)
        #expect(pacer.nanosecondsPerRun == nil)
    }

    @Test func fastRunsGetTheDeepestPipelineAndSlowRunsTheShallowest() {
        var fast = pacer()
        fast.sent(at: 1_000)
        // 16 runs in 32 µs: 2 µs each, so 500 fit in the budget; the most is 256.
        #expect(fast.arrived(16, at: 33_000) == 256)
        var slow = pacer()
        slow.sent(at: 0)
        // 2 runs in 10 ms: 5 ms each, more than the budget; the least is 2.
        #expect(slow.arrived(2, at: 10_000_000) == 2)
        var middling = pacer()
        middling.sent(at: 0)
        // 10 runs in 1 ms: 100 µs each, 10 in the budget.
        #expect(middling.arrived(10, at: 1_000_000) == 10)
    }

    /// The pace is measured only while the worker has runs: a quiet spell between two bursts is
    /// not taken for slow runs.
    @Test func aQuietSpellIsNotCountedAsRunTime() {
        var pacer = pacer()
        pacer.sent(at: 0)
        #expect(pacer.arrived(10, at: 40_000) == 250)  // 4 µs a run
        pacer.settle(at: 40_000, busy: false)
        // A second later, another burst: measured from its first send.
        pacer.sent(at: 1_000_040_000)
        pacer.sent(at: 1_000_041_000)
        #expect(pacer.arrived(10, at: 1_000_080_000) == 250)
        #expect(pacer.nanosecondsPerRun == 4_000)
        // While runs stay in flight, from one arrival to the next.
        pacer.settle(at: 1_000_080_000, busy: true)
        #expect(pacer.arrived(5, at: 1_000_100_000) == 250)
    }

    /// An average over several arrivals: one slow arrival lowers the depth a little, a lasting
    /// change of pace moves it all the way.
    @Test func theDepthFollowsAChangeOfPaceGradually() {
        var pacer = pacer()
        pacer.sent(at: 0)
        var now: UInt64 = 10_000
        #expect(pacer.arrived(10, at: now) == 256)  // 1 µs a run
        pacer.settle(at: now, busy: true)
        // One arrival at 100 µs a run: the average moves an eighth of the way (about 13 µs).
        now += 1_000_000
        let afterOne = pacer.arrived(10, at: now)
        #expect(afterOne > 10 && afterOne < 256)
        pacer.settle(at: now, busy: true)
        for _ in 0..<60 {
            now += 1_000_000
            _ = pacer.arrived(10, at: now)
            pacer.settle(at: now, busy: true)
        }
        #expect(pacer.depth == 10)
    }

    @Test func theBoundsHoldWhateverTheyAreGiven() {
        let odd = PipelinePacer(budgetNanoseconds: 0, initial: 1_000, minimum: 0, maximum: 0)
        #expect(odd.minimum == 1 && odd.maximum == 1 && odd.depth == 1)
        var none = PipelinePacer(budgetNanoseconds: 0, initial: 4, minimum: 3, maximum: 8)
        #expect(none.depth == 4)
        none.sent(at: 0)
        #expect(none.arrived(1, at: 1) == 3)
    }
}
