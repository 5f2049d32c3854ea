import Synchronization

/// Work that a long-lived `run()` hosts as child tasks of its own task group, handed in from
/// anywhere (an actor's synchronous method included): the structured way to start a task
/// that outlives the call that starts it.
public struct ChildTaskQueue: Sendable {
    public typealias Job = @Sendable () async -> Void

    private let jobs: AsyncStream<Job>
    private let continuation: AsyncStream<Job>.Continuation
    private let live = LiveCount()

    public init() {
        (jobs, continuation) = AsyncStream.makeStream(of: Job.self)
    }

    /// Runs `job` as a child task of the group that hosts the queue (once it is hosted). False
    /// after ``finish()``: the job will not run.
    @discardableResult
    public func add(_ job: @escaping Job) -> Bool {
        if case .terminated = continuation.yield(job) { return false }
        return true
    }

    /// No more jobs: ``host(in:)`` returns once it has started every job added before.
    public func finish() {
        continuation.finish()
    }

    /// The jobs started and not yet ended. A long-lived group's children are one list that Swift's
    /// runtime walks from its oldest to remove one that ends, so what stays alive there stays few.
    public var running: Int { live.value.load(ordering: .relaxed) }

    /// Starts every job added, as it comes, as a child task of `group`, until ``finish()``.
    /// A discarding group: a job's memory goes when it ends (a plain task group keeps every
    /// finished child until `next()`, which a long-lived host never calls). Runs on the caller's
    /// actor, where the group lives.
    nonisolated(nonsending) public func host(in group: inout DiscardingTaskGroup) async {
        for await job in jobs {
            live.value.add(1, ordering: .relaxed)
            group.addTask { [live] in
                await job()
                live.value.subtract(1, ordering: .relaxed)
            }
        }
    }
}

private final class LiveCount: Sendable {
    let value = Atomic<Int>(0)
}
