import SystemSupport

/// The runs in progress, shared by the pipe reader (which cancels) and the serve loop (which
/// starts and ends runs). Run ids increase per worker, so a cancel for an id not yet started is
/// remembered and one for an id already ended is dropped.
final class RunRegistry: Sendable {
    private struct State {
        /// Running ids and how to cancel them.
        var running: [UInt64: @Sendable () -> Void] = [:]
        var cancelledBeforeStart: Set<UInt64> = []
        var lastStarted: UInt64 = 0
        var closed = false
    }

    private let state = LockedValue(State())

    /// Marks `id` as running, stopped by `cancel` (which must work before the run's closure has
    /// started, too: ``RunCancellation``); false if it was cancelled before it began (or the pipe
    /// closed).
    func begin(_ id: UInt64, cancel: @escaping @Sendable () -> Void) -> Bool {
        state.withLock { state in
            state.lastStarted = max(state.lastStarted, id)
            if state.closed || state.cancelledBeforeStart.remove(id) != nil { return false }
            state.running[id] = cancel
            return true
        }
    }

    func end(_ id: UInt64) {
        state.withLock { _ = $0.running.removeValue(forKey: id) }
    }

    func cancel(_ id: UInt64) {
        let cancel: (@Sendable () -> Void)? = state.withLock { state in
            if let cancel = state.running[id] { return cancel }
            if id > state.lastStarted { state.cancelledBeforeStart.insert(id) }
            return nil
        }
        cancel?()
    }

    /// The executor went away: cancel everything, now and later.
    func cancelAll() {
        let all = state.withLock { state in
            state.closed = true
            return Array(state.running.values)
        }
        for cancel in all { cancel() }
    }
}
