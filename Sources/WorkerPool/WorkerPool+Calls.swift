public import Isolation
import SystemSupport
public import TaskRunning
public import WorkerWire

/// One closure call as a runner hands it to the pool: a task's closure or a mini-task.
public struct CallRequest: Sendable {
    /// The Mesos task's id or the mini-task's; names the task's log directory in fine mode.
    public var taskID: String
    public var function: String
    public var payload: [UInt8]
    public var environment: [String: String]
    /// Fine mode: the limits of the cgroup of the worker started for this call (the task's).
    public var limits: CgroupLimits

    public init(
        taskID: String, function: String, payload: [UInt8], environment: [String: String] = [:],
        limits: CgroupLimits = .none
    ) {
        self.taskID = taskID
        self.function = function
        self.payload = payload
        self.environment = environment
        self.limits = limits
    }
}

/// How a call ended.
public enum CallCompletion: Sendable, Equatable {
    /// The worker answered.
    case result(RunResult)
    /// The worker ended while running the call.
    case workerEnded(String)
    /// The kernel's OOM killer ended the worker while it ran the call: it reached its memory limit.
    case memoryLimitReached(WorkerMemoryLimit)
    /// No worker could take the call (could not start, spoke garbage, pool shut down).
    case unavailable(String)
    /// Cancelled or killed before any worker got it.
    case cancelled(String)
}

/// How a task's call ended, what the worker's cgroup accounted to it, and whether it was ever
/// running (handed to a worker, or its forked worker existed).
public struct CallEnding: Sendable {
    public let completion: CallCompletion
    public let usage: CgroupUsage?
    public let started: Bool
}

/// A worker stopped by the kernel's OOM killer inside its cgroup: the limit it ran under and the
/// peak it reached.
public struct WorkerMemoryLimit: Sendable, Equatable {
    public let limitBytes: UInt64
    public let peakBytes: Int64
    /// What the worker's calls report.
    public let text: String
}

extension WorkerPool {
    /// Runs a task's closure on a worker of its own (fine mode: a fresh worker in the task's
    /// cgroup) or a warm one (coarse mode) and returns how it ended. `control` hears when the
    /// closure is running and what it reports of its progress; its stop requests cancel the
    /// closure (terminate) or kill its worker (force kill).
    public nonisolated func run(_ request: CallRequest, control: TaskControl) async -> CallEnding {
        let (events, reply) = AsyncStream.makeStream(of: TaskCallEvent.self)
        // Stop requests join the call's events, so that no task of its own waits for them: most
        // tasks are never stopped. One that comes after the ending goes nowhere (the stream is over).
        control.onStopRequest { reply.yield(.stopRequested($0)) }
        let id = await submit(request, reply: reply, control: control)
        var ending = CallEnding(
            completion: .unavailable("the worker pool ended the call without a result"), usage: nil, started: false)
        var started = false
        for await event in events {
            switch event {
            case .started:
                started = true
                await control.started()
            case .ended(let completion, let usage):
                ending = CallEnding(completion: completion, usage: usage, started: started)
            case .stopRequested(let stop):
                await self.stop(id, stop)
            }
        }
        return ending
    }

    /// Runs mini-task calls pipelined on warm workers (coarse mode; one fresh worker each in fine
    /// mode). The endings come as they finish, each with its request's index; every `next()`
    /// returns all that finished since the last, so a fast stream is read in few steps.
    public func runPipelined(_ requests: [CallRequest]) -> PipelinedEndings {
        let endings = PipelinedEndings(expected: requests.count)
        submit(requests, endings: endings)
        return endings
    }
}

/// What the pool tells the runner of a task's call, and the runtime's stop requests for it.
enum TaskCallEvent: Sendable {
    case started
    case ended(CallCompletion, usage: CgroupUsage?)
    case stopRequested(StopRequest)
}

/// The endings of a batch of pipelined calls, in the order they finish: each element is every
/// ending that arrived since the previous one, with its request's index, id and function (so that
/// whoever reads them need not keep the batch's requests while it runs). Ends after the last
/// call's ending.
public final class PipelinedEndings: AsyncSequence, Sendable {
    public typealias Element = [(index: Int, taskID: String, function: String, completion: CallCompletion)]

    private struct Inbox {
        var arrived: Element = []
        var delivered = 0
        var waiter: CheckedContinuation<Element?, Never>?
    }

    private let expected: Int
    private let inbox = LockedValue(Inbox())

    init(expected: Int) { self.expected = expected }

    func add(_ index: Int, taskID: String, function: String, _ completion: CallCompletion) {
        let resume: (CheckedContinuation<Element?, Never>, Element)? = inbox.withLock { inbox in
            inbox.arrived.append((index, taskID, function, completion))
            guard let waiter = inbox.waiter else { return nil }
            inbox.waiter = nil
            defer { inbox.arrived = [] }
            inbox.delivered += inbox.arrived.count
            return (waiter, inbox.arrived)
        }
        if let (waiter, endings) = resume { waiter.resume(returning: endings) }
    }

    /// The endings that arrived since the last call, waiting for one if none did; nil after the last.
    func next() async -> Element? {
        await withCheckedContinuation { (waiter: CheckedContinuation<Element?, Never>) in
            let ready: Element?? = inbox.withLock { inbox in
                if !inbox.arrived.isEmpty {
                    defer { inbox.arrived = [] }
                    inbox.delivered += inbox.arrived.count
                    return .some(inbox.arrived)
                }
                if inbox.delivered >= expected { return .some(nil) }
                inbox.waiter = waiter
                return nil
            }
            if let ready { waiter.resume(returning: ready) }
        }
    }

    public struct AsyncIterator: AsyncIteratorProtocol {
        let endings: PipelinedEndings
        public mutating func next() async -> Element? { await endings.next() }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(endings: self) }
}
