/// How many mini-tasks a coarse worker should have in flight, from how fast it gets through them.
///
/// A deep pipeline lets many runs share each write to the worker, each wake-up of it, each write
/// of its results and each executor MESSAGE that carries them; a shallow one keeps what waits in
/// the worker small: a Mesos task given to that worker next waits for the runs queued ahead of it,
/// and a worker that dies takes them with it. So the depth is the number of runs the worker gets
/// through in `budget`, between `minimum` and `maximum`: hundreds of runs of a few microseconds,
/// a handful of runs of a millisecond. Until a first measurement the depth is `initial`.
///
/// The worker's pace is measured from the results' arrivals while it has runs in flight: the
/// time since the previous arrival (or since the first run was sent to an idle worker) divided by
/// the runs that came back, averaged over the last few arrivals. A pure value: times are given in
/// nanoseconds of a monotonic clock.
struct PipelinePacer: Equatable {
    let budgetNanoseconds: UInt64
    let minimum: Int
    let maximum: Int
    /// The depth to use now.
    private(set) var depth: Int
    /// Nanoseconds per run, averaged; nil before the first measurement.
    private(set) var nanosecondsPerRun: Double?
    /// Since when the worker has had pipelined runs in flight without a break; nil while it has
    /// none (or runs a Mesos task's call, whose time says nothing about mini-tasks).
    private var busySince: UInt64?

    init(budgetNanoseconds: UInt64, initial: Int, minimum: Int, maximum: Int) {
        self.budgetNanoseconds = budgetNanoseconds
        self.maximum = max(1, maximum)
        self.minimum = min(max(1, minimum), self.maximum)
        self.depth = min(max(initial, self.minimum), self.maximum)
    }

    /// Pipelined runs were sent to the worker at `now`.
    mutating func sent(at now: UInt64) {
        if busySince == nil { busySince = now }
    }

    /// `count` results arrived at `now`; returns the depth from now on. Call ``settle(at:busy:)``
    /// once the arrival has been handled.
    mutating func arrived(_ count: Int, at now: UInt64) -> Int {
        guard count > 0, let since = busySince, now > since else { return depth }
        let sample = Double(now - since) / Double(count)
        // An average over about the last eight arrivals: one slow spell does not empty the pipeline.
        let average = nanosecondsPerRun.map { $0 + (sample - $0) / 8 } ?? sample
        nanosecondsPerRun = average
        let fits = Double(budgetNanoseconds) / average
        depth = fits >= Double(maximum) ? maximum : max(minimum, Int(fits))
        return depth
    }

    /// After an arrival at `now` was handled: `busy` says whether pipelined runs are still in
    /// flight, measured from `now` on; if not, the next send starts the clock again.
    mutating func settle(at now: UInt64, busy: Bool) {
        busySince = busy ? now : nil
    }

    /// The worker was given a Mesos task's call (it runs nothing else meanwhile).
    mutating func exclusive() {
        busySince = nil
    }
}
