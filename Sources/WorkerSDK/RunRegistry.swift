import SystemSupport

/// The runs in progress, shared by the pipe reader (which cancels) and the serve loop (which
/// starts and ends runs). Run ids increase per worker, so a cancel for an id not yet started is
/// remembered and one for an id already ended is dropped.
final class RunRegistry: Sendable {
    private struct State {
        /// Running ids and how to cancel them (nil until the closure's task exists).
        var running: [UInt64: (@Sendable () -> Void)?] = [:]
        /// Running ids whose cancel came before their task existed.
        var cancelRequested: Set<UInt64> = []
        var cancelledBeforeStart: Set<UInt64> = []
        var lastStarted: UInt64 = 0
        var closed = false
    }

    private let state = LockedValue(State())

    /// Marks `id` as running; false if it was cancelled before it began (or the pipe closed).
    func begin(_ id: UInt64) -> Bool {
        state.withLock { state in
            state.lastStarted = max(state.lastStarted, id)
            if state.closed || state.cancelledBeforeStart.remove(id) != nil { return false }
            state.running[id] = .some(nil)
            return true
        }
    }

    /// Gives the running `id` its cancel action; runs it at once if a cancel already came.
    func attach(_ id: UInt64, cancel: @escaping @Sendable () -> Void) {
        let cancelNow = state.withLock { state in
            state.running[id] = cancel
            return state.cancelRequested.remove(id) != nil || state.closed
        }
        if cancelNow { cancel() }
    }

    func end(_ id: UInt64) {
        state.withLock { state in
            state.running[id] = nil
            state.cancelRequested.remove(id)
        }
    }

    func cancel(_ id: UInt64) {
        let cancel: (@Sendable () -> Void)? = state.withLock { state in
            if let entry = state.running[id] {
                if entry == nil { state.cancelRequested.insert(id) }
                return entry
            }
            if id > state.lastStarted { state.cancelledBeforeStart.insert(id) }
            return nil
        }
        cancel?()
    }

    /// The executor went away: cancel everything, now and later.
    func cancelAll() {
        let all = state.withLock { state in
            state.closed = true
            return state.running.values.compactMap { $0 }
        }
        for cancel in all { cancel() }
    }
}
