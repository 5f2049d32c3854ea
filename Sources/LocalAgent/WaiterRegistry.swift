import SystemSupport

/// The continuations of `waitUntil` calls, resumed when a new state satisfies their predicate.
/// Lives outside the actor so a cancellation handler can reach it synchronously.
final class WaiterRegistry: Sendable {
    private struct Waiter {
        var predicate: @Sendable (LocalAgentState) -> Bool
        /// Resumes the waiting task with the satisfying state, or (nil) with cancellation.
        var resume: @Sendable (LocalAgentState?) -> Void
    }

    private struct Storage {
        var nextID = 0
        var waiters: [Int: Waiter] = [:]
        var cancelled: Set<Int> = []
        /// How many states ``resumeSatisfied(by:)`` has been given: a waiter checked against an
        /// older one is told to check again rather than kept (see ``generation``).
        var generation = 0
    }

    private let storage = LockedValue(Storage())

    /// The count of states announced so far. A caller reads it right after checking the state its
    /// predicate is about, and registers with it: a state announced in between makes the
    /// registration resume at once with nil, "check again", instead of waiting for a change that
    /// has already happened. One can be: the agent's waits register from the operation of
    /// `withTaskCancellationHandler`, a closure that captures nothing isolated to the agent's actor
    /// and so runs off it, after a hop during which the actor records whatever comes next (a body
    /// there that asserts the actor's isolation traps; one that captures `self` runs on the actor).
    var generation: Int { storage.withLock { $0.generation } }

    func makeID() -> Int {
        storage.withLock { storage in
            storage.nextID += 1
            return storage.nextID
        }
    }

    /// Resumes `continuation` with the first state announced that satisfies `predicate`, or with
    /// nil when a state was announced after `generation` (the caller checks again).
    func add(
        _ id: Int,
        since generation: Int,
        predicate: @escaping @Sendable (LocalAgentState) -> Bool,
        continuation: CheckedContinuation<LocalAgentState?, any Error>
    ) {
        add(id, since: generation, predicate: predicate) { outcome in
            switch outcome {
            case .satisfied(let state): continuation.resume(returning: state)
            case .checkAgain: continuation.resume(returning: nil)
            case .cancelled: continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// A waiter that is only told *that* its predicate held (true), or to check again (false): it
    /// keeps no copy of the state, so the agent's next change does not have to copy what it has
    /// observed so far.
    func add(
        _ id: Int,
        since generation: Int,
        predicate: @escaping @Sendable (LocalAgentState) -> Bool,
        continuation: CheckedContinuation<Bool, any Error>
    ) {
        add(id, since: generation, predicate: predicate) { outcome in
            switch outcome {
            case .satisfied: continuation.resume(returning: true)
            case .checkAgain: continuation.resume(returning: false)
            case .cancelled: continuation.resume(throwing: CancellationError())
            }
        }
    }

    private enum Outcome {
        case satisfied(LocalAgentState)
        case checkAgain
        case cancelled
    }

    private func add(
        _ id: Int, since generation: Int, predicate: @escaping @Sendable (LocalAgentState) -> Bool,
        resume: @escaping @Sendable (Outcome) -> Void
    ) {
        let now: Outcome? = storage.withLock { storage in
            if storage.cancelled.remove(id) != nil { return .cancelled }
            if storage.generation != generation { return .checkAgain }
            storage.waiters[id] = Waiter(predicate: predicate) { state in
                resume(state.map { .satisfied($0) } ?? .cancelled)
            }
            return nil
        }
        if let now { resume(now) }
    }

    func cancel(_ id: Int) {
        let waiter = storage.withLock { storage in
            guard let waiter = storage.waiters.removeValue(forKey: id) else {
                storage.cancelled.insert(id)
                return Waiter?.none
            }
            return waiter
        }
        waiter?.resume(nil)
    }

    /// Resumes every waiter whose predicate holds for `state`.
    func resumeSatisfied(by state: LocalAgentState) {
        let satisfied = storage.withLock { storage in
            storage.generation += 1
            let ids = storage.waiters.filter { $0.value.predicate(state) }.map(\.key)
            return ids.compactMap { storage.waiters.removeValue(forKey: $0) }
        }
        for waiter in satisfied { waiter.resume(state) }
    }

    /// Fails every waiter, e.g. when the agent stops.
    func cancelAll() {
        let all = storage.withLock { storage in
            let all = Array(storage.waiters.values)
            storage.waiters.removeAll()
            return all
        }
        for waiter in all { waiter.resume(nil) }
    }
}
