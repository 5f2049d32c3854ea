import WorkerWire

/// The pool's bookkeeping as a pure state machine: which calls wait, which worker runs what,
/// when to start, replace, close or kill a worker. Every input returns the actions to perform;
/// the `WorkerPool` actor performs them and feeds back what happened.
struct PoolState {
    struct SlotID: Hashable, Comparable, Sendable, CustomStringConvertible {
        let raw: Int
        static func < (lhs: Self, rhs: Self) -> Bool { lhs.raw < rhs.raw }
        var description: String { "worker-\(raw)" }
    }

    struct CallID: Hashable, Sendable {
        let raw: UInt64

        /// Hashed as the integer it is, in one SipHash block, rather than through a `Hasher`
        /// stream (seed, combine, finalize): the pool's tables are looked up by call several
        /// times per mini-task.
        func _rawHashValue(seed: Int) -> Int { raw._rawHashValue(seed: seed) }
    }

    /// Exclusive calls (Mesos closure tasks) need a worker to themselves; pipelined calls
    /// (mini-tasks) share a worker with as many others in flight as its pipeline's depth.
    enum Kind: Sendable, Equatable {
        case exclusive
        case pipelined
    }

    enum Mode: Equatable {
        /// A fresh worker per call, at most `maximumWorkers` alive at once.
        case fine(maximumWorkers: Int)
        /// `workers` long-lived workers.
        case coarse(workers: Int)
    }

    typealias Completion = CallCompletion

    enum Action: Equatable {
        /// Start a worker process for `slot`; `call` is the call it is started for (fine mode).
        case launch(SlotID, call: CallID?)
        /// Hand the call to the worker as run `runID`.
        case send(SlotID, runID: UInt64, CallID)
        case cancel(SlotID, runID: UInt64)
        /// SIGKILL the worker's process group.
        case kill(SlotID)
        /// Close the worker's input: it finishes what it runs and exits.
        case close(SlotID)
        case complete(CallID, Completion)
        /// Fine mode: the call's worker exists and its program offers the call's function, so the
        /// call is running as far as anyone can tell (TASK_RUNNING before the worker's hello).
        case started(CallID)
    }

    private enum Phase: Equatable {
        case starting
        case ready
        case closing
    }

    private struct Slot {
        var phase = Phase.starting
        let ephemeral: Bool
        /// How many pipelined calls the worker may have in flight.
        var depth: Int
        var runs: [UInt64: CallID] = [:]
        var nextRunID: UInt64 = 1
        var exclusive = false
        var everReady = false
        /// The worker's hello: its name and the functions it offers (none listed: not checked).
        var hello: WorkerHello?
        /// Fine mode: the call this worker was started for, until the call is handed to it (the call's
        /// place is `.assigned(slot)` meanwhile). Found here, not by a search through every call.
        var startedFor: CallID?
    }

    private struct CallRecord {
        var kind: Kind
        var place: Place
        /// The function the call names, when the caller gave it: checked against the worker's hello.
        var function: String?
    }

    private enum Place: Equatable {
        case queued
        /// Fine mode: waiting for the worker started for it.
        case assigned(SlotID)
        case running(SlotID, runID: UInt64)
    }

    let mode: Mode
    /// The depth every worker's pipeline starts with (see ``resultsArrived(_:_:pipelineDepth:)``).
    let pipelineDepth: Int
    private var slots: [SlotID: Slot] = [:]
    /// Coarse slots whose worker failed before its hello; started again only when a call comes,
    /// so a broken worker program cannot spin.
    private var broken: [SlotID] = []
    /// Waiting calls, one first-in first-out queue per kind.
    private var waitingExclusive = CallQueue()
    private var waitingPipelined = CallQueue()
    /// Every call not yet completed. One table, looked up once per step: with tens of thousands of
    /// mini-tasks in flight its lookups are a visible part of a mini-task's cost.
    private var calls = CallTable<CallRecord>()
    private var nextSlot = 0
    private(set) var shuttingDown = false

    /// The most pipelined calls a worker may be given however many it runs at once.
    let maximumPipelineDepth: Int

    /// `pipelineDepth`: every worker's depth until the pool gives it another; `maximumPipelineDepth`
    /// (at least that): the most a worker that runs several runs at once keeps in flight.
    init(mode: Mode, pipelineDepth: Int, maximumPipelineDepth: Int? = nil) {
        self.mode = mode
        self.pipelineDepth = max(1, pipelineDepth)
        self.maximumPipelineDepth = max(self.pipelineDepth, maximumPipelineDepth ?? 0)
    }

    /// True once shut down and every worker has ended.
    var isFinished: Bool { shuttingDown && slots.isEmpty }

    /// Workers alive (starting, ready or closing).
    var workerCount: Int { slots.count }

    /// The call a worker's run belongs to, while it runs.
    func call(on slot: SlotID, run runID: UInt64) -> CallID? { slots[slot]?.runs[runID] }

    /// Whether the worker has pipelined calls (mini-tasks) in flight.
    func runsPipelinedCalls(_ slot: SlotID) -> Bool {
        guard let worker = slots[slot] else { return false }
        return !worker.exclusive && !worker.runs.isEmpty
    }

    /// How many pipelined calls the worker may have in flight now.
    func pipelineDepth(of slot: SlotID) -> Int? { slots[slot]?.depth }

    /// How many runs the worker has in flight.
    func runCount(on slot: SlotID) -> Int { slots[slot]?.runs.count ?? 0 }

    /// Fine mode: the worker of `slot` exists, forked by the fork server, whose hello offered
    /// `offers` (a forked worker is the same program, so it offers the same). Its call has started
    /// when its function is among them; a function not on offer is refused at the worker's hello.
    func workerLaunched(_ slot: SlotID, offering offers: Set<String>) -> [Action] {
        guard let id = slots[slot]?.startedFor, let function = calls[id]?.function, offers.contains(function)
        else { return [] }
        return [.started(id)]
    }

    mutating func start() -> [Action] {
        guard case .coarse(let count) = mode, slots.isEmpty else { return [] }
        return (0..<max(1, count)).map { _ in .launch(newSlot(ephemeral: false), call: nil) }
    }

    mutating func submit(_ id: CallID, kind: Kind, function: String? = nil) -> [Action] {
        submit([(id, kind, function)])
    }

    /// Many calls at once: one scheduling pass for all of them.
    mutating func submit(_ batch: [(id: CallID, kind: Kind)]) -> [Action] {
        submit(batch.map { ($0.id, $0.kind, nil) })
    }

    /// Many calls at once, each naming its function: a worker whose hello does not offer it
    /// refuses the call without running it (an unknown-function result, and no `send`).
    mutating func submit(_ batch: [(id: CallID, kind: Kind, function: String?)]) -> [Action] {
        guard !shuttingDown else { return batch.map { .complete($0.id, .unavailable("the worker pool is shut down")) } }
        for (id, kind, function) in batch {
            calls[id] = CallRecord(kind: kind, place: .queued, function: function)
            if kind == .exclusive { waitingExclusive.append(id) } else { waitingPipelined.append(id) }
        }
        var actions: [Action] = []
        for slot in broken {
            slots[slot] = Slot(ephemeral: false, depth: pipelineDepth)
            actions.append(.launch(slot, call: nil))
        }
        broken = []
        return actions + schedule()
    }

    mutating func workerReady(_ slot: SlotID, hello: WorkerHello? = nil) -> [Action] {
        guard var worker = slots[slot], worker.phase == .starting else { return [] }
        worker.phase = .ready
        worker.everReady = true
        worker.hello = hello
        slots[slot] = worker
        if worker.ephemeral, let id = worker.startedFor {
            guard let refusal = refusal(id, by: slot) else { return [dispatch(id, to: slot)] }
            calls[id] = nil
            slots[slot]?.startedFor = nil
            slots[slot]?.phase = .closing
            return [.complete(id, refusal), .close(slot)]
        }
        return schedule()
    }

    /// `pipelineDepth`: how many pipelined calls the worker may have in flight from now on (the
    /// pool's measure of its pace, ``PipelinePacer``); never fewer than twice the runs it said it
    /// runs at once (up to `maximumPipelineDepth`), so that it always has the next run at hand.
    mutating func resultsArrived(_ slot: SlotID, _ results: [RunResult], pipelineDepth depth: Int? = nil) -> [Action] {
        guard let index = slots.index(forKey: slot) else { return [] }
        if let depth {
            let concurrency = Int(slots.values[index].hello?.concurrency ?? 1)
            slots.values[index].depth = max(1, depth, min(2 * concurrency, maximumPipelineDepth))
        }
        var actions: [Action] = []
        actions.reserveCapacity(results.count + 1)
        // In place: a copy of the slot would share its table of runs, and the first removal would
        // then copy the whole table.
        for result in results {
            guard let id = slots.values[index].runs.removeValue(forKey: result.id) else { continue }
            calls[id] = nil
            actions.append(.complete(id, .result(result)))
        }
        let worker = slots.values[index]
        if worker.runs.isEmpty { slots.values[index].exclusive = false }
        if worker.ephemeral && worker.runs.isEmpty && worker.phase != .closing {
            slots.values[index].phase = .closing
            actions.append(.close(slot))
        }
        return actions + schedule()
    }

    /// The worker process of `slot` is gone; `why` says how, for the calls it was running, and
    /// `memoryLimit` when the kernel's OOM killer ended it.
    mutating func workerEnded(_ slot: SlotID, why: String, memoryLimit: WorkerMemoryLimit? = nil) -> [Action] {
        guard let worker = slots.removeValue(forKey: slot) else { return [] }
        var actions: [Action] = []
        for (_, id) in worker.runs.sorted(by: { $0.key < $1.key }) {
            calls[id] = nil
            actions.append(.complete(id, memoryLimit.map { .memoryLimitReached($0) } ?? .workerEnded(why)))
        }
        if let id = worker.startedFor, calls.removeValue(forKey: id) != nil {
            actions.append(.complete(id, .unavailable(why)))
        }
        if !worker.ephemeral && !shuttingDown {
            if worker.everReady {
                actions.append(.launch(newSlot(ephemeral: false), call: nil))
            } else {
                broken.append(slot)
                // No worker left that could ever take them: fail the waiting calls.
                if slots.isEmpty { actions += failQueue(.unavailable(why)) }
            }
        }
        return actions + schedule()
    }

    /// A polite stop (cancel the closure).
    mutating func cancel(_ id: CallID) -> [Action] {
        switch calls[id]?.place {
        case .running(let slot, let runID): return [.cancel(slot, runID: runID)]
        case .queued, .assigned: return withdraw(id)
        case nil: return []
        }
    }

    /// A forced stop (kill the worker running it).
    mutating func kill(_ id: CallID) -> [Action] {
        switch calls[id]?.place {
        case .running(let slot, _): return [.kill(slot)]
        case .queued, .assigned: return withdraw(id)
        case nil: return []
        }
    }

    /// Kills every worker still alive (the shutdown grace period is over).
    func killAll() -> [Action] { slots.keys.sorted().map { .kill($0) } }

    mutating func shutdown() -> [Action] {
        guard !shuttingDown else { return [] }
        shuttingDown = true
        broken = []
        var actions = failQueue(.unavailable("the worker pool is shutting down"))
        for (slot, worker) in slots.sorted(by: { $0.key < $1.key }) where worker.phase != .closing {
            slots[slot]?.phase = .closing
            actions.append(.close(slot))
        }
        return actions
    }

    // MARK: Scheduling

    private mutating func newSlot(ephemeral: Bool) -> SlotID {
        let slot = SlotID(raw: nextSlot)
        nextSlot += 1
        slots[slot] = Slot(ephemeral: ephemeral, depth: pipelineDepth)
        return slot
    }

    private mutating func withdraw(_ id: CallID) -> [Action] {
        guard let call = calls.removeValue(forKey: id) else { return [] }
        // A fine-mode call whose worker was started (it may already be TASK_RUNNING, see
        // `workerLaunched`) is cancelled before it started, as a worker says of a run it drops.
        var why = "stopped before a worker ran it"
        if case .assigned = call.place { why = "was cancelled before it started" }
        var actions: [Action] = [.complete(id, .cancelled(why))]
        if case .assigned(let slot) = call.place {
            slots[slot]?.startedFor = nil
            slots[slot]?.phase = .closing
            actions.append(.close(slot))
        }
        waitingExclusive.remove(id)
        waitingPipelined.remove(id)
        return actions
    }

    private mutating func failQueue(_ completion: Completion) -> [Action] {
        let failed = waitingExclusive.drain() + waitingPipelined.drain()
        return failed.compactMap { id in
            calls.removeValue(forKey: id) == nil ? nil : .complete(id, completion)
        }
    }

    /// The unknown-function result a worker would give `id`, when its hello shows it cannot run it.
    private func refusal(_ id: CallID, by slot: SlotID) -> Completion? {
        refusal(of: calls[id]?.function, by: slot)
    }

    private func refusal(of function: String?, by slot: SlotID) -> Completion? {
        guard let function, let hello = slots[slot]?.hello, !hello.functions.isEmpty,
            !hello.functions.contains(function)
        else { return nil }
        let offered = hello.functions.sorted().joined(separator: ", ")
        return .result(
            RunResult(
                id: 0, status: .unknownFunction,
                error: "worker '\(hello.workerName)' has no function '\(function)' (it offers: \(offered))"))
    }

    /// Sends `id` to `slot`, or refuses it there and then when the worker does not offer its function.
    private mutating func dispatchOrRefuse(_ id: CallID, to slot: SlotID) -> Action {
        // Read into a local first: as an argument of a method of `self`, the in-place access would
        // copy the whole table.
        guard let function = calls.modify(id, { $0.function }) else { return dispatch(id, to: slot) }
        guard let refusal = refusal(of: function, by: slot) else { return dispatch(id, to: slot) }
        calls.removeValue(forKey: id)
        return .complete(id, refusal)
    }

    private mutating func dispatch(_ id: CallID, to slot: SlotID) -> Action {
        let slotIndex = slots.index(forKey: slot)!
        let runID = slots.values[slotIndex].nextRunID
        slots.values[slotIndex].nextRunID += 1
        slots.values[slotIndex].runs[runID] = id
        if slots.values[slotIndex].startedFor == id { slots.values[slotIndex].startedFor = nil }
        if calls.modify(id, { Self.place(&$0, .running(slot, runID: runID)) }) == .exclusive {
            slots.values[slotIndex].exclusive = true
        }
        return .send(slot, runID: runID, id)
    }

    /// Sets the call's place; returns its kind.
    private static func place(_ call: inout CallRecord, _ place: Place) -> Kind {
        call.place = place
        return call.kind
    }

    /// Hands waiting calls to workers, each kind in arrival order. Exclusive calls go first; while
    /// one waits for an idle worker, the least busy worker gets no new pipelined calls, so that a
    /// stream of mini-tasks cannot starve Mesos tasks.
    private mutating func schedule() -> [Action] {
        guard !shuttingDown else { return [] }
        var actions: [Action] = []
        while let id = waitingExclusive.first {
            if let slot = pickWorker(for: .exclusive, sparing: nil) {
                actions.append(dispatchOrRefuse(id, to: slot))
            } else if let slot = launchEphemeral(for: id) {
                actions.append(.launch(slot, call: id))
            } else {
                break
            }
            waitingExclusive.removeFirst()
        }
        let spared = waitingExclusive.isEmpty ? nil : leastBusyWorker()
        // A worker is topped up with pipelined calls once it has run down to half its depth, not
        // after every result: calls then go out in batches (one write, one wake-up of the worker
        // for many) while the worker still has half a pipeline of work queued.
        let refilling = waitingPipelined.isEmpty ? [] : slotsToRefill()
        while let id = waitingPipelined.first {
            if let slot = pickWorker(for: .pipelined, sparing: spared, among: refilling) {
                actions.append(dispatchOrRefuse(id, to: slot))
            } else if let slot = launchEphemeral(for: id) {
                actions.append(.launch(slot, call: id))
            } else {
                break
            }
            waitingPipelined.removeFirst()
        }
        return actions
    }

    private mutating func launchEphemeral(for id: CallID) -> SlotID? {
        guard case .fine(let maximum) = mode, slots.count < maximum else { return nil }
        let slot = newSlot(ephemeral: true)
        calls.modify(id) { $0.place = .assigned(slot) }
        slots[slot]?.startedFor = id
        return slot
    }

    private func leastBusyWorker() -> SlotID? {
        slots.filter { !$0.value.ephemeral && $0.value.phase == .ready && !$0.value.exclusive }
            .min { ($0.value.runs.count, $0.key) < ($1.value.runs.count, $1.key) }?.key
    }

    /// The workers that may take pipelined calls in this scheduling pass: those down to half
    /// their pipeline depth or less.
    private func slotsToRefill() -> [SlotID] {
        slots.compactMap { $0.value.runs.count <= $0.value.depth / 2 ? $0.key : nil }
    }

    /// `among`: for pipelined calls, the workers that may take them (`slotsToRefill()`).
    private func pickWorker(for kind: Kind, sparing spared: SlotID?, among refilling: [SlotID] = []) -> SlotID? {
        var best: (SlotID, Int)?
        for (slot, worker) in slots
        where !worker.ephemeral && worker.phase == .ready && !worker.exclusive && slot != spared
            && (kind == .exclusive || refilling.contains(slot))
        {
            switch kind {
            case .exclusive:
                if worker.runs.isEmpty && (best == nil || slot < best!.0) { best = (slot, 0) }
            case .pipelined:
                let load = worker.runs.count
                if load < worker.depth && (best == nil || load < best!.1 || (load == best!.1 && slot < best!.0)) {
                    best = (slot, load)
                }
            }
        }
        return best?.0
    }

}
