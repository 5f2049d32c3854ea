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

    public let taskID: String
    public let interval: Duration
    private let send: @Sendable ([UInt8]) async -> Void
    private let reports: AsyncStream<Report>
    private let continuation: AsyncStream<Report>.Continuation
    private struct State {
        var closed = false
        /// Between a send and the end of the pause after it.
        var pausing = false
    }
    private let state = LockedValue(State())

    public init(taskID: String, interval: Duration, send: @escaping @Sendable ([UInt8]) async -> Void) {
        self.taskID = taskID
        self.interval = interval
        self.send = send
        (reports, continuation) = AsyncStream.makeStream(of: Report.self, bufferingPolicy: .bufferingNewest(1))
    }

    /// A report from the task; cheap, never waits. Ignored once the task's run is over.
    public func report(_ fraction: Double, message: String) {
        guard !state.withLock({ $0.closed }) else { return }
        let clamped = fraction.isFinite ? min(1, max(0, fraction)) : 0
        continuation.yield(Report(fraction: clamped, message: message))
    }

    /// Runs `body` (the task) with the forwarding alongside. When `body` returns, a report that
    /// is due is still sent and one held back by the rate limit is dropped; once this returns,
    /// nothing more is sent.
    public func forwarding<T: Sendable>(_ body: @Sendable () async -> T) async -> T {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.run() }
            let value = await body()
            let wasPausing = state.withLock { state in
                state.closed = true
                return state.pausing
            }
            continuation.finish()
            if wasPausing { group.cancelAll() }
            await group.waitForAll()
            return value
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
