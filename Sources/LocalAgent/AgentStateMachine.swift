import Foundation
import MesosCodec
import MesosProto
import NIOHTTP1

/// One HTTP request to the executor endpoint, body already collected.
struct ExecutorRequest: Sendable {
    var method: HTTPMethod
    var uri: String
    var headers: HTTPHeaders
    var body: [UInt8]
    /// When the request's head arrived (wall clock): benchmarks time an executor's start-up by it.
    var received = Date()
}

/// A complete (non-streaming) answer.
struct AgentResponse: Sendable, Equatable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders = [:]
    var body: String = ""

    static let accepted = AgentResponse(status: .accepted)

    /// Error answers carry a short plain-text reason, as libprocess does.
    static func error(_ status: HTTPResponseStatus, _ message: String, headers: HTTPHeaders = [:]) -> Self {
        var headers = headers
        headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
        return AgentResponse(status: status, headers: headers, body: message)
    }
}

/// How the connection that sent a request must answer it.
enum AgentReply: Sendable, Equatable {
    case respond(AgentResponse)
    /// 200 with a chunked RecordIO body; events follow as ``AgentAction/send(_:stream:)``.
    case stream(Int, WireEncoding)
    /// The agent is down: drop the connection without an answer.
    case close
}

/// I/O the state machine asks for.
enum AgentAction: Sendable {
    case send(Mesos_V1_Executor_Event, stream: Int)
    /// `clean`: write the terminating chunk; otherwise drop the connection like a crashed agent.
    case closeStream(Int, clean: Bool)
    /// Call ``AgentStateMachine/recoveryWindowElapsed(generation:)`` after this long.
    case endRecovery(after: Duration, generation: Int)
}

/// The agent side of the executor API as a value: requests and script steps in, replies and
/// actions out, everything observed recorded in `observed`. No I/O, no clocks.
struct AgentStateMachine {
    static let paths: Set<Substring> = ["/api/v1/executor", "/slave(1)/api/v1/executor"]
    static let notRecovered = "Agent has not finished recovery"

    var configuration: LocalAgentConfiguration
    /// The bound TCP port, reported in `AgentInfo.port`.
    var port = 0
    private(set) var observed = LocalAgentState()

    var frameworkKnown = true
    var currentStream: Int?
    var nextStreamNumber = 1
    var queue: [QueuedLaunch] = []
    var tasks: [String: TaskRecord] = [:]
    var taskOrder: [String] = []
    var everSentTask = false
    var ackStreams: [Data: Int] = [:]
    /// Position of each stored update in `observed.updates`, by uuid.
    var updateIndex: [Data: Int] = [:]
    var withholdingAcknowledgements = false
    var withheldAcknowledgements: [Mesos_V1_Executor_Event] = []
    var rejectingUpdates = false
    var updateFaults: UpdateFaults.Draws?
    var recoveryGeneration = 0
    var restartedSinceSubscribe = false

    init(configuration: LocalAgentConfiguration) {
        self.configuration = configuration
    }

    /// Answers one request, following the order of checks of the agent's `Http::executor`.
    mutating func receive(_ request: ExecutorRequest) -> (reply: AgentReply, actions: [AgentAction]) {
        var record = ObservedRequest(
            method: request.method.rawValue,
            path: request.uri,
            contentType: request.headers.first(name: "Content-Type"),
            accept: request.headers.first(name: "Accept"),
            call: nil,
            status: 0,
            message: "",
            received: request.received
        )
        var actions: [AgentAction] = []
        let reply = route(request, &record, &actions)
        switch reply {
        case .respond(let response):
            record.status = Int(response.status.code)
            record.message = response.body
        case .stream:
            record.status = 200
        case .close:
            record.status = 0
        }
        if record.status >= 400 && record.status != 503 {
            let what = record.call.map { "\($0.type)" } ?? "\(record.method) \(record.path)"
            violate(.rejectedRequest, "\(what) answered \(record.status) \(record.message)")
        }
        observed.requests.append(record)
        return (reply, actions)
    }

    private mutating func route(
        _ request: ExecutorRequest,
        _ record: inout ObservedRequest,
        _ actions: inout [AgentAction]
    ) -> AgentReply {
        guard observed.phase != .down else { return .close }
        let path = request.uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false).first ?? ""
        guard Self.paths.contains(path) else { return .respond(.error(.notFound, "")) }
        if let unauthorized = authenticate(request.headers) { return .respond(unauthorized) }
        if observed.phase == .recoveringContainerizer {
            return .respond(.error(.serviceUnavailable, Self.notRecovered))
        }
        guard request.method == .POST else {
            let message = "Expecting one of { 'POST' }, but received '\(request.method.rawValue)'"
            return .respond(.error(.methodNotAllowed, message, headers: ["Allow": "POST"]))
        }
        guard let contentType = request.headers.first(name: "Content-Type") else {
            return .respond(.error(.badRequest, "Expecting 'Content-Type' to be present"))
        }
        guard let encoding = WireEncoding(contentType: contentType) else {
            let message = "Expecting 'Content-Type' of application/json or application/x-protobuf"
            return .respond(.error(.unsupportedMediaType, message))
        }
        let call: Mesos_V1_Executor_Call
        do {
            call = try encoding.decode(Mesos_V1_Executor_Call.self, from: request.body)
        } catch {
            return .respond(.error(.badRequest, "Failed to parse body into Call: \(error)"))
        }
        record.call = call
        if let reason = ExecutorCallValidation.validate(call) {
            if call.type == .update && call.update.status.state == .taskStaging {
                violate(.stagingUpdate, "task \(call.update.status.taskID.value)")
            }
            return .respond(.error(.badRequest, "Failed to validate Executor::Call: \(reason)"))
        }
        return dispatch(call, request: request, encoding: encoding, &actions)
    }

    private mutating func dispatch(
        _ call: Mesos_V1_Executor_Call,
        request: ExecutorRequest,
        encoding: WireEncoding,
        _ actions: inout [AgentAction]
    ) -> AgentReply {
        var streamEncoding = encoding
        switch call.type {
        case .subscribe:
            let accept = request.headers["Accept"]
            let acceptHeader = accept.isEmpty ? nil : accept.joined(separator: ",")
            guard let negotiated = MediaTypeNegotiation.negotiate(acceptHeader: acceptHeader) else {
                let message = "Expecting 'Accept' to allow application/json or application/x-protobuf"
                return .respond(.error(.notAcceptable, message))
            }
            streamEncoding = negotiated
        case .heartbeat:
            return .respond(.accepted)
        case .update, .message, .unknown:
            if observed.phase == .recovering || (call.type == .update && rejectingUpdates) {
                return .respond(.error(.serviceUnavailable, Self.notRecovered))
            }
            if call.type == .update, let fault = updateFaults?.next() {
                switch fault {
                case .unavailable: return .respond(.error(.serviceUnavailable, Self.notRecovered))
                case .dropped: return .close
                }
            }
        }
        guard frameworkKnown, call.frameworkID.value == configuration.frameworkID else {
            return .respond(.error(.badRequest, "Framework cannot be found"))
        }
        guard call.executorID.value == configuration.executorID, observed.executorStatus != .terminated else {
            return .respond(.error(.badRequest, "Executor cannot be found"))
        }
        if observed.executorStatus == .registering && call.type != .subscribe {
            return .respond(.error(.forbidden, "Executor is not subscribed"))
        }
        switch call.type {
        case .subscribe:
            return .stream(subscribe(call.subscribe, &actions), streamEncoding)
        case .update:
            processUpdate(call.update, executorID: call.executorID.value, resent: false, &actions)
            return .respond(.accepted)
        case .message:
            observed.messages.append(call.message.data)
            guard !observed.diesAtNextMessage else {
                // Stored, never answered: the agent dies before it writes the 202.
                actions += goDown()
                return .close
            }
            return .respond(.accepted)
        case .heartbeat, .unknown:
            return .respond(.error(.notImplemented, ""))
        }
    }

    private func authenticate(_ headers: HTTPHeaders) -> AgentResponse? {
        guard let token = configuration.authenticationToken else { return nil }
        let realm = "Bearer realm=\"mesos-agent-executor\""
        guard let header = headers.first(name: "Authorization") else {
            return .error(.unauthorized, "", headers: ["WWW-Authenticate": realm])
        }
        let parts = header.split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 2, parts[0] == "Bearer", parts[1] == token else {
            return .error(.unauthorized, "", headers: ["WWW-Authenticate": realm + ", error=\"invalid_token\""])
        }
        return nil
    }

    // MARK: Helpers shared by the extensions

    mutating func violate(_ kind: ProtocolViolation.Kind, _ detail: String) {
        observed.violations.append(ProtocolViolation(kind, detail))
    }

    /// Writes `event` to the current stream, or records it as lost.
    @discardableResult
    mutating func emit(_ event: Mesos_V1_Executor_Event, _ actions: inout [AgentAction]) -> Bool {
        guard let stream = currentStream else {
            observed.events.append(ObservedEvent(stream: nil, event: event, delivered: false))
            return false
        }
        observed.events.append(ObservedEvent(stream: stream, event: event, delivered: true))
        actions.append(.send(event, stream: stream))
        return true
    }

    mutating func recordLostEvent(_ event: Mesos_V1_Executor_Event) {
        observed.events.append(ObservedEvent(stream: nil, event: event, delivered: false))
    }

    mutating func setPhase(_ phase: LocalAgentState.Phase) {
        if phase == .down {
            // A life ends: the MESSAGEs so far reached this one (`LocalAgentState.life(ofMessage:)`).
            if observed.phase != .down { observed.messagesAtRestarts.append(observed.messages.count) }
            observed.diesAtNextMessage = false
        }
        observed.phase = phase
    }

    /// From now on until it happens (or the agent goes down otherwise), the next executor MESSAGE
    /// is stored and the agent dies before answering it: its connection is dropped, as by an agent
    /// process that crashed between handling a request and writing the answer.
    mutating func dieAtNextMessage() { observed.diesAtNextMessage = true }
    mutating func setExecutorStatus(_ status: LocalAgentState.ExecutorStatus) { observed.executorStatus = status }
    mutating func setOpenStream(_ stream: Int?) {
        currentStream = stream
        observed.hasOpenStream = stream != nil
    }
    mutating func recordSubscription() { observed.subscriptions += 1 }

    mutating func setTaskState(_ taskID: String, _ state: Mesos_V1_TaskState) {
        tasks[taskID]?.state = state
        observed.taskStates[taskID] = state
    }

    mutating func recordUpdate(_ update: ObservedUpdate) {
        updateIndex[update.uuid] = observed.updates.count
        observed.updates.append(update)
    }
    mutating func modifyUpdate(uuid: Data, _ change: (inout ObservedUpdate) -> Void) {
        // Indexed by uuid: jobs with thousands of tasks must not make every ACK a linear scan.
        if let index = updateIndex[uuid] { change(&observed.updates[index]) }
    }
}

/// A launch waiting for the executor to subscribe.
enum QueuedLaunch: Sendable {
    case task(Mesos_V1_TaskInfo)
    case group(Mesos_V1_TaskGroupInfo)

    var tasks: [Mesos_V1_TaskInfo] {
        switch self {
        case .task(let task): [task]
        case .group(let group): group.tasks
        }
    }

    var event: Mesos_V1_Executor_Event {
        var event = Mesos_V1_Executor_Event()
        switch self {
        case .task(let task):
            event.type = .launch
            event.launch.task = task
        case .group(let group):
            event.type = .launchGroup
            event.launchGroup.taskGroup = group
        }
        return event
    }
}

/// A task as the agent tracks it.
struct TaskRecord: Sendable {
    var info: Mesos_V1_TaskInfo
    var delivered = false
    var state: Mesos_V1_TaskState = .taskStaging
    var uuids: Set<Data> = []
    var isTerminal: Bool { state.isTerminal }
}

extension Mesos_V1_TaskState {
    /// Whether no further update may follow (a terminal `TaskState`).
    var isTerminal: Bool {
        switch self {
        case .taskFinished, .taskFailed, .taskKilled, .taskError, .taskLost, .taskDropped, .taskGone,
            .taskGoneByOperator:
            true
        case .taskStaging, .taskStarting, .taskRunning, .taskKilling, .taskUnreachable, .taskUnknown:
            false
        }
    }
}
