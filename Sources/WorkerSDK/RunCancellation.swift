import SystemSupport

/// Cancels one run's closure from another thread (the pipe reader's), whenever the cancel comes:
/// a cancel before the closure starts cancels its task as it starts. The task may run other runs
/// before and after this one (a one-at-a-time worker runs a batch's runs in one task, and starts a
/// fresh one after a cancelled run), so it is reachable here only while it runs this closure (the
/// reference is set and cleared under the lock that `cancel()` holds): a late cancel cannot touch
/// the run after it, nor a task that has ended.
final class RunCancellation: Sendable {
    /// Kept only while the task runs the closure (see above), which is what makes sharing it sound.
    private struct RunningTask: @unchecked Sendable {
        let task: UnsafeCurrentTask
    }

    private struct State {
        var running: RunningTask?
        var cancelled = false
    }

    private let state = LockedValue(State())

    /// Runs `body` as the current task's closure: a cancel that came before it cancels the task at
    /// once, one that comes while it runs cancels the task then.
    func whileRunning<T>(_ body: () async throws -> T) async rethrows -> T {
        withUnsafeCurrentTask { task in
            state.withLock { state in
                state.running = task.map(RunningTask.init)
                if state.cancelled { task?.cancel() }
            }
        }
        defer { state.withLock { $0.running = nil } }
        return try await body()
    }

    func cancel() {
        state.withLock { state in
            state.cancelled = true
            state.running?.task.cancel()
        }
    }
}
