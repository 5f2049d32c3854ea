import MesosCodec
import SystemSupport

/// Forwards one task's progress reports to the framework as executor MESSAGEs:
/// `{"progress": {"task_id": …, "fraction": …, "message": …, "sequence": n}}`. At most one
/// message per `interval` (the newest report wins, older ones are dropped), each sent once (a
/// lost one is not retried: the next report supersedes it), and none once ``forwarding(_:)`` has
/// returned — the runtime hands the task's terminal update over only after that.
public final class ProgressForwarder: Sendable {
    public struct Report: Sendable, Equatable {
        public var fraction: Double
        public var message: String

        public init(fraction: Double, message: String) {
            self.fraction = fraction
            self.message = message
        }
    }

    /// Starts a job as a child task of a long-lived group (the runtime's `ChildTaskQueue`); false
    /// when that group takes no more (the executor is on its way out).
    public typealias Start = @Sendable (@escaping @Sendable () async -> Void) -> Bool

    public let taskID: String
    public let interval: Duration
    private let start: Start
    private let send: @Sendable ([UInt8]) async -> Void
    private let reports: AsyncStream<Report>
    private let continuation: AsyncStream<Report>.Continuation
    private struct State {
        var closed = false
        /// Between a send and the end of the pause after it.
        var pausing = false
        /// Whether the sender was started (by the first report) and whether it is over.
        var senderStarted = false
        var senderOver = false
        /// The sender waits here for the task's run to end, told whether it was pausing then.
        var closeWaiter: CheckedContinuation<Bool, Never>?
        /// ``forwarding(_:)`` waits here for the sender to be over.
        var overWaiter: CheckedContinuation<Void, Never>?
    }
    private let state = LockedValue(State())

    /// `start` runs the sender, which the first report starts: a task that never reports has
    /// none (most do not).
    public init(
        taskID: String, interval: Duration, start: @escaping Start,
        send: @escaping @Sendable ([UInt8]) async -> Void
    ) {
        self.taskID = taskID
        self.interval = interval
        self.start = start
        self.send = send
        (reports, continuation) = AsyncStream.makeStream(of: Report.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// A report from the task; cheap, never waits. Ignored once the task's run is over.
    public func report(_ fraction: Double, message: String) {
        let clamped = fraction.isFinite ? min(1, max(0, fraction)) : 0
        state.withLock { state in
            guard !state.closed else { return }
            continuation.yield(Report(fraction: clamped, message: message))
            guard !state.senderStarted else { return }
            state.senderStarted = true
            state.senderOver = !start { await self.sendReports() }
        }
    }

    /// Runs `body` (the task) with the forwarding alongside. When `body` returns, a report that
    /// is due is still sent and one held back by the rate limit is dropped; once this returns,
    /// nothing more is sent.
    public func forwarding<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
        let value = await body()
        let (closeWaiter, wasPausing, senderRuns) = state.withLock { state in
            state.closed = true
            defer { state.closeWaiter = nil }
            return (state.closeWaiter, state.pausing, state.senderStarted && !state.senderOver)
        }
        continuation.finish()
        closeWaiter?.resume(returning: wasPausing)
        if senderRuns {
            await withCheckedContinuation { (waiter: CheckedContinuation<Void, Never>) in
                let over = state.withLock { state in
                    if !state.senderOver { state.overWaiter = waiter }
                    return state.senderOver
                }
                if over { waiter.resume() }
            }
        }
        return value
    }

    /// The sender: sends reports until the task's run is over, and ends a pause it is in then.
    private func sendReports() async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.run() }
            if await closing() { group.cancelAll() }
            await group.waitForAll()
        }
        let waiter = state.withLock { state in
            state.senderOver = true
            defer { state.overWaiter = nil }
            return state.overWaiter
        }
        waiter?.resume()
    }

    /// Returns once the task's run is over; true if the sender was pausing then.
    private func closing() async -> Bool {
        await withCheckedContinuation { (waiter: CheckedContinuation<Bool, Never>) in
            let pausing: Bool? = state.withLock { state in
                if state.closed { return state.pausing }
                state.closeWaiter = waiter
                return nil
            }
            if let pausing { waiter.resume(returning: pausing) }
        }
    }

    private func run() async {
        var sequence: UInt64 = 0
        for await report in reports {
            sequence += 1
            await send(Self.message(taskID: taskID, report: report, sequence: sequence))
            let closed = state.withLock { state in
                state.pausing = !state.closed
                return state.closed
            }
            if closed { return }
            // Reports meanwhile replace one another; the newest is sent after the pause.
            do { try await Task.sleep(for: interval) } catch { return }
            state.withLock { $0.pausing = false }
        }
    }

    /// The MESSAGE payload.
    public static func message(taskID: String, report: Report, sequence: UInt64) -> [UInt8] {
        JSONValue.object([
            (
                "progress",
                .object([
                    ("task_id", .string(taskID)), ("fraction", .number("\(report.fraction)")),
                    ("message", .string(report.message)), ("sequence", .number("\(sequence)")),
                ])
            )
        ]).serialized()
    }
}
