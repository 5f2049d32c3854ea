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
    }

    private let storage = LockedValue(Storage())

    func makeID() -> Int {
        storage.withLock { storage in
            storage.nextID += 1
            return storage.nextID
        }
    }

    func add(
        _ id: Int,
        predicate: @escaping @Sendable (LocalAgentState) -> Bool,
        continuation: CheckedContinuation<LocalAgentState, any Error>
    ) {
        add(id, predicate: predicate) { state in
            if let state {
                continuation.resume(returning: state)
            } else {
                continuation.resume(throwing: CancellationError())
            }
        }
    }

    /// A waiter that is only told *that* its predicate held: it keeps no copy of the state, so the
    /// agent's next change does not have to copy what it has observed so far.
    func add(
        _ id: Int,
        predicate: @escaping @Sendable (LocalAgentState) -> Bool,
        continuation: CheckedContinuation<Void, any Error>
    ) {
        add(id, predicate: predicate) { state in
            if state != nil { continuation.resume() } else { continuation.resume(throwing: CancellationError()) }
        }
    }

    private func add(
        _ id: Int, predicate: @escaping @Sendable (LocalAgentState) -> Bool,
        resume: @escaping @Sendable (LocalAgentState?) -> Void
    ) {
        let alreadyCancelled = storage.withLock { storage in
            if storage.cancelled.remove(id) != nil { return true }
            storage.waiters[id] = Waiter(predicate: predicate, resume: resume)
            return false
        }
        if alreadyCancelled { resume(nil) }
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
