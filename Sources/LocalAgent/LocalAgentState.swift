public import Foundation
public import MesosProto

/// What a ``LocalAgent`` has seen and done so far: the value `waitUntil` predicates look at.
public struct LocalAgentState: Sendable {
    /// The simulated agent process's life cycle: down, recovering its containerizer, recovering, running.
    public enum Phase: Sendable, Hashable {
        /// Not listening: connections are refused.
        case down
        /// Listening, but the containerizer is not recovered: every request gets 503.
        case recoveringContainerizer
        /// Re-registration window: SUBSCRIBE works, UPDATE and MESSAGE get 503.
        case recovering
        /// Serving normally.
        case running
    }

    /// The executor as the agent sees it.
    public enum ExecutorStatus: Sendable, Hashable {
        /// Launched (or recovered after a restart), not subscribed yet.
        case registering
        /// Subscribed; events go to its current stream.
        case subscribed
        /// Told to shut down; a SUBSCRIBE gets a stream with just SHUTDOWN.
        case terminating
        /// Gone for the agent (missed its re-registration window); SUBSCRIBE gets 400.
        case terminated
    }

    /// Where the simulated agent process is in its life cycle.
    public internal(set) var phase: Phase = .running
    /// The executor's registration as the agent sees it.
    public internal(set) var executorStatus: ExecutorStatus = .registering
    /// Every request answered, in order.
    public internal(set) var requests: [ObservedRequest] = []
    /// Every event the agent emitted, in order, including ones lost because no stream was open.
    public internal(set) var events: [ObservedEvent] = []
    /// Every distinct update the agent accepted (by uuid), in arrival order, including ones it made itself.
    public internal(set) var updates: [ObservedUpdate] = []
    /// The latest state of every task the agent knows, by task id.
    public internal(set) var taskStates: [String: Mesos_V1_TaskState] = [:]
    /// The `data` of every executor MESSAGE call accepted, in order.
    public internal(set) var messages: [Data] = []
    /// How many executor MESSAGEs had been accepted each time the agent went down, in order: the
    /// messages after the n-th mark reached the agent's (n+1)-th life. An executor sends a MESSAGE
    /// again when a dying agent cut its answer, so one MESSAGE can be here twice, in two lives.
    public internal(set) var messagesAtRestarts: [Int] = []
    /// Everything a conforming executor would not have done.
    public internal(set) var violations: [ProtocolViolation] = []
    /// Whether the agent is set to die as it stores the next executor MESSAGE, before answering it
    /// (``LocalAgent/restart(atNextMessage:)``).
    public internal(set) var diesAtNextMessage = false
    /// How many SUBSCRIBE calls opened a stream.
    public internal(set) var subscriptions: Int = 0
    /// Whether a subscribe stream is open right now.
    public internal(set) var hasOpenStream: Bool = false

    /// The updates for `taskID`, in the order the agent accepted them.
    public func updates(forTask taskID: String) -> [ObservedUpdate] {
        updates.filter { $0.status.taskID.value == taskID }
    }

    /// The update with this uuid, if the agent has it.
    public func update(uuid: Data) -> ObservedUpdate? {
        updates.first { $0.uuid == uuid }
    }

    /// The agent's life (0 until its first restart, 1 until its second, …) in which the executor
    /// MESSAGE at `index` of ``messages`` arrived.
    public func life(ofMessage index: Int) -> Int {
        messagesAtRestarts.count { $0 <= index }
    }

    /// The events of one type, in order.
    public func events(_ type: Mesos_V1_Executor_Event.TypeEnum) -> [Mesos_V1_Executor_Event] {
        events.filter { $0.event.type == type }.map(\.event)
    }

    /// The requests carrying one call type, in order.
    public func requests(_ type: Mesos_V1_Executor_Call.TypeEnum) -> [ObservedRequest] {
        requests.filter { $0.call?.type == type }
    }

    /// The uuids of every ACKNOWLEDGED event written to a stream.
    public var acknowledgedUUIDs: [Data] {
        events.filter { $0.delivered && $0.event.type == .acknowledged }.map(\.event.acknowledged.uuid)
    }

    /// A few lines describing what happened, for failure messages.
    public var summary: String {
        var lines: [String] = ["phase \(phase), executor \(executorStatus), \(subscriptions) subscription(s)"]
        lines.append("requests: " + requests.map(\.summary).joined(separator: ", "))
        lines.append("events: " + events.map(\.summary).joined(separator: ", "))
        let states = taskStates.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }
        lines.append("tasks: " + states.joined(separator: ", "))
        if !violations.isEmpty {
            lines.append("violations: " + violations.map(\.description).joined(separator: "; "))
        }
        return lines.joined(separator: "\n")
    }
}

/// One HTTP request and the agent's answer.
public struct ObservedRequest: Sendable {
    /// The HTTP method, e.g. `POST`.
    public var method: String
    /// The request target as sent, e.g. `/api/v1/executor`.
    public var path: String
    /// The `Content-Type` header, if any.
    public var contentType: String?
    /// The `Accept` header, if any.
    public var accept: String?
    /// The decoded call, when the body parsed.
    public var call: Mesos_V1_Executor_Call?
    /// The status code answered (200 for an opened stream).
    public var status: Int
    /// The plain-text error body, empty on success.
    public var message: String
    /// When the request's head arrived (wall clock).
    public var received: Date

    var summary: String {
        let type = call.map { "\($0.type)" } ?? method
        return "\(type)→\(status)"
    }
}

/// One event the agent emitted.
public struct ObservedEvent: Sendable {
    /// Which subscription stream (1-based, in SUBSCRIBE order) it went to, nil if none was open.
    public var stream: Int?
    /// The event itself.
    public var event: Mesos_V1_Executor_Event
    /// False when it was lost: no stream open, or withheld.
    public var delivered: Bool

    var summary: String { "\(event.type)" + (delivered ? "" : "(lost)") }
}

/// One status update the agent holds.
public struct ObservedUpdate: Sendable {
    /// The status as the agent stored it (agent id and executor id filled in).
    public var status: Mesos_V1_TaskStatus
    /// `status.uuid`: the 16 raw bytes identifying the update.
    public var uuid: Data
    /// Whether the agent has sent ACKNOWLEDGED for it (agent-made updates are never acknowledged).
    public var acknowledged: Bool
    /// How many times the executor sent it again after the first time.
    public var duplicates: Int

    /// True for updates the agent generated itself (TASK_LOST after a restart, TASK_KILLED before delivery).
    public var isFromAgent: Bool { status.source == .agent }
}

/// How far a follower of the agent has read: counts of requests, events, updates and messages.
public struct ObservationMark: Sendable, Hashable {
    public var requests = 0
    public var events = 0
    public var updates = 0
    public var messages = 0

    /// The start: nothing read yet.
    public init() {}

    /// Everything in `state` read.
    public init(_ state: LocalAgentState) {
        requests = state.requests.count
        events = state.events.count
        updates = state.updates.count
        messages = state.messages.count
    }
}

/// What the agent observed after an ``ObservationMark``, in order, and the mark after it.
public struct Observations: Sendable {
    public var requests: [ObservedRequest]
    public var events: [ObservedEvent]
    public var updates: [ObservedUpdate]
    public var messages: [Data]
    /// The agent's life in which each of `messages` arrived (see ``LocalAgentState/life(ofMessage:)``).
    public var messageLives: [Int]
    public var mark: ObservationMark
}
