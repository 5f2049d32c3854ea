/// Work that a long-lived `run()` hosts as child tasks of its own task group, handed in from
/// anywhere (an actor's synchronous method included): the structured way to start a task
/// that outlives the call that starts it.
public struct ChildTaskQueue: Sendable {
    public typealias Job = @Sendable () async -> Void

    private let jobs: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation

    public init() {
        (jobs, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    /// Runs `job` as a child task of the group that hosts the queue (once it is hosted).
    public func add(_ job: @escaping Job) {
        continuation.yield(job)
    }

    /// No more jobs: ``host(in:)`` returns once it has started every job added before.
    public func finish() {
        continuation.finish()
    }

    /// Starts every job added, as it comes, as a child task of `group`, until ``finish()``.
    /// A discarding group: a job's memory goes when it ends (a plain task group keeps every
    /// finished child until `next()`, which a long-lived host never calls). Runs on the caller's
    /// actor, where the group lives.
    nonisolated(nonsending) public func host(in group: inout DiscardingTaskGroup) async {
        for await job in jobs { group.addTask { await job() } }
    }
}
