import SystemSupport
import Testing

@Suite("ChildTaskQueue: work handed in from anywhere runs as child tasks of the host's group")
struct ChildTaskQueueTests {
    final class Record: Sendable {
        let ran = LockedValue<[Int]>([])
        let sawCancellation = LockedValue(false)
    }

    @Test func everyJobAddedBeforeFinishRunsAndTheHostWaitsForThem() async {
        let queue = ChildTaskQueue()
        let record = Record()
        // Added before the queue is hosted: they wait for the host.
        for index in 0..<3 { queue.add { record.ran.withLock { $0.append(index) } } }
        await withDiscardingTaskGroup { group in
            group.addTask {
                // Added while hosted, from another task; then no more.
                for index in 3..<6 { queue.add { record.ran.withLock { $0.append(index) } } }
                queue.finish()
            }
            await queue.host(in: &group)
        }
        // The group has ended, so every job it started has ended too.
        #expect(record.ran.withLock { $0.sorted() } == Array(0..<6))
    }

    @Test func jobsAreChildrenOfTheHostSoCancellingTheGroupCancelsThem() async {
        let queue = ChildTaskQueue()
        let record = Record()
        let (started, startedContinuation) = AsyncStream.makeStream(of: Void.self)
        queue.add {
            startedContinuation.yield()
            // Ends only by cancellation (a stream's iteration ends when its task is cancelled): a
            // job that were not the group's child would hang the test here.
            let (never, openUntilNow) = AsyncStream.makeStream(of: Void.self)
            for await _ in never {}
            openUntilNow.finish()
            record.sawCancellation.withLock { $0 = Task.isCancelled }
        }
        await withDiscardingTaskGroup { group in
            group.addTask {
                for await _ in started { break }
                queue.finish()
            }
            await queue.host(in: &group)
            group.cancelAll()
        }
        #expect(record.sawCancellation.withLock { $0 })
    }
}
