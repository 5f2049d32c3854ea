import SystemSupport

/// Cancels one run's task from another thread (the pipe reader's), whenever the cancel comes: a
/// cancel before the task runs the closure cancels it as it starts. The task is started with
/// `Task.immediate`, so its `Task` handle exists only once the closure has run up to its first
/// suspension, which may be its end; a cancel must reach it before that too. The task is
/// reachable here only while it runs the closure (the reference is set and cleared under the
/// lock that `cancel()` holds), so a late cancel cannot touch a task that has ended.
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
