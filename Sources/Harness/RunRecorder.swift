import Foundation
import LocalAgent
import MesosCodec
import MesosProto

/// The one owner of what happened during a run, with the time each thing was seen: it follows
/// the local agent's observed state and the harness's own steps, and feeds the live output.
actor RunRecorder {
    let start = ContinuousClock.now
    let startDate = Date()
    private(set) var log = RunLog()
    /// How far the agent's observations have been recorded.
    private var seen = ObservationMark()
    /// Each task's latest state in `log.updates`, kept as they arrive (the live line needs it often).
    private var latestStates: [String: String] = [:]
    /// Each task's latest progress fraction in `log.progress`.
    private var latestFractions: [String: Double] = [:]
    /// Each answered mini-task's first result and the agent's life its latest copy came in.
    private var miniTaskAnswers: [String: (result: ClosureWire.Result, life: Int)] = [:]
    private let output: (any RunOutput)?

    init(output: (any RunOutput)?) {
        self.output = output
    }

    /// Milliseconds since the run started.
    var now: Double { Self.milliseconds(ContinuousClock.now - start) }

    static func milliseconds(_ duration: Duration) -> Double {
        let (seconds, attoseconds) = duration.components
        return Double(seconds) * 1000 + Double(attoseconds) / 1e15
    }

    /// Records a harness action (launch, kill, restart, …).
    func step(_ kind: StepRecord.Kind, _ detail: String, tasks: [String] = []) {
        log.steps.append(StepRecord(atMs: now, kind: kind, detail: detail, tasks: tasks))
        for id in tasks where kind == .launch { log.launchedAt[id] = now }
        output?.note(String(format: "%7.2fs  %@", now / 1000, detail))
        output?.progress(progress)
    }

    /// Records that the executor process ended.
    func executorExited(_ description: String, at instant: ContinuousClock.Instant) {
        let time = Self.milliseconds(instant - start)
        log.executorExitAtMs = time
        output?.note(String(format: "%7.2fs  executor %@", time / 1000, description))
    }

    /// Follows the agent until the calling task is cancelled.
    func follow(_ agent: LocalAgent) async {
        while !Task.isCancelled {
            do {
                try await agent.waitForObservations(after: seen)
            } catch {
                if Task.isCancelled { return }
            }
            await catchUp(with: agent)
        }
    }

    /// Records whatever the agent observed since last time.
    func catchUp(with agent: LocalAgent) async {
        let from = seen
        let new = await agent.observations(since: from)
        // Another catch-up may have recorded some of it while this one waited (the follower's, a
        // step's): then only what is newer than that, asked for again.
        guard seen == from else { return await catchUp(with: agent) }
        absorb(new)
    }

    private func absorb(_ new: Observations) {
        let time = now
        for request in new.requests {
            let type = request.call.map { "\($0.type)" } ?? request.method
            log.calls.append(CallRecord(atMs: time, type: type, status: request.status, message: request.message))
            // Only an agent dying as it stores a MESSAGE leaves one unanswered (`restart_agent: at_next_message`).
            if request.status == 0, request.call?.type == .message {
                step(.restartAgent, "agent restart: died at the executor's MESSAGE without answering it")
            }
        }
        for event in new.events {
            var detail = ""
            switch event.event.type {
            case .launch: detail = event.event.launch.task.taskID.value
            case .launchGroup:
                detail = event.event.launchGroup.taskGroup.tasks.map(\.taskID.value).joined(separator: ",")
            case .kill: detail = event.event.kill.taskID.value
            case .acknowledged: detail = event.event.acknowledged.taskID.value
            default: break
            }
            log.events.append(
                EventRecord(
                    atMs: time, type: "\(event.event.type)", delivered: event.delivered, stream: event.stream,
                    detail: detail))
        }
        for update in new.updates {
            let status = update.status
            let record = UpdateRecord(
                atMs: time, taskID: status.taskID.value, state: StateName.of(status.state),
                uuid: RunReport.hex(update.uuid),
                source: status.source == .agent ? "agent" : "executor",
                reason: status.hasReason ? "\(status.reason)" : nil,
                message: status.hasMessage ? status.message : nil,
                data: status.data.isEmpty ? nil : String(decoding: status.data, as: UTF8.self),
                healthy: status.hasHealthy ? status.healthy : nil,
                check: status.reason == .taskCheckStatusUpdated ? CheckText.of(status.checkStatus) : nil,
                labels: status.labels.labels.isEmpty
                    ? nil : Dictionary(status.labels.labels.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 }),
                limitation: status.hasLimitation
                    ? Dictionary(
                        status.limitation.resources.map { ($0.name, $0.scalar.value) }, uniquingKeysWith: { $1 })
                    : nil)
            log.updates.append(record)
            latestStates[record.taskID] = record.state
            output?.note(
                String(format: "%7.2fs  %@ %@", time / 1000, record.taskID, record.state)
                    + CheckText.annotation(status)
                    + (record.message.map { " — \($0)" } ?? ""))
        }
        for (message, life) in zip(new.messages, new.messageLives) {
            log.executorMessages.append(MessageRecord(atMs: time, bytes: message.count))
            if let progress = ClosureWire.progress(message, atMs: time) {
                log.progress.append(progress)
                latestFractions[progress.taskID] = progress.fraction
                output?.note(
                    String(format: "%7.2fs  %@ progress %.0f%%", time / 1000, progress.taskID, progress.fraction * 100)
                        + (progress.message.isEmpty ? "" : " — \(progress.message)"))
                continue
            }
            for result in ClosureWire.results(message) ?? [] { recordAnswer(result, life: life, at: time) }
        }
        let changed = !new.updates.isEmpty || !new.messages.isEmpty
        seen = new.mark
        if changed { output?.progress(progress) }
    }

    /// A result for a mini-task: its first, the same result again from a later life of the agent
    /// (a resend: the previous agent died before answering the MESSAGE that carried it), or one
    /// answer too many.
    private func recordAnswer(_ result: ClosureWire.Result, life: Int, at time: Double) {
        guard let earlier = miniTaskAnswers[result.id] else {
            miniTaskAnswers[result.id] = (result, life)
            log.miniTaskAnswers[result.id] = 1
            log.miniTaskResults[result.id] = MiniTaskResultRecord(atMs: time, result: result)
            return
        }
        if life > earlier.life, result == earlier.result {
            miniTaskAnswers[result.id]?.life = life
            var resends = log.miniTaskResends ?? [:]
            resends[result.id, default: 0] += 1
            log.miniTaskResends = resends
        } else {
            log.miniTaskAnswers[result.id, default: 0] += 1
        }
    }

    /// Counts of tasks by phase, for the live line.
    var progress: Progress {
        let latest = latestStates
        var result = Progress(elapsedMs: now)
        for id in log.launchedAt.keys {
            switch latest[id] {
            case nil, "TASK_STAGING", "TASK_STARTING": result.staged += 1
            case "TASK_RUNNING", "TASK_KILLING": result.running += 1
            case "TASK_FINISHED": result.finished += 1
            case "TASK_KILLED": result.killed += 1
            default: result.failed += 1
            }
        }
        result.taskProgress = latestFractions.filter { latest[$0.key] == "TASK_RUNNING" }.sorted { $0.key < $1.key }
            .map { (taskID: $0.key, fraction: $0.value) }
        result.miniTasksDone = log.miniTaskResults.count
        result.miniTasksSent = log.miniTasksSent
        return result
    }

    func miniTasksSent(_ count: Int) { log.miniTasksSent += count }
}

/// Live counts shown while a job runs.
public struct Progress: Sendable {
    /// Milliseconds since the run started.
    public var elapsedMs: Double
    /// Tasks launched without TASK_RUNNING yet, running, and ended by kind.
    public var staged = 0
    public var running = 0
    public var finished = 0
    public var failed = 0
    public var killed = 0
    /// Mini-tasks sent, and those with a result.
    public var miniTasksSent = 0
    public var miniTasksDone = 0
    /// Running closure tasks' latest reported progress, by task id.
    public var taskProgress: [(taskID: String, fraction: Double)] = []

    /// Ended tasks (and mini-tasks) per second.
    public var throughput: Double {
        elapsedMs > 0 ? Double(finished + failed + killed + miniTasksDone) / (elapsedMs / 1000) : 0
    }
}

/// Where live output goes.
public protocol RunOutput: Sendable {
    /// Something happened (a line in CI logs; above the live line on a terminal).
    func note(_ line: String)
    /// The counts changed.
    func progress(_ progress: Progress)
}

/// Mesos state names as the report writes them.
enum StateName {
    static func of(_ state: Mesos_V1_TaskState) -> String { state.name }

    static let terminal: Set<String> = [
        "TASK_FINISHED", "TASK_FAILED", "TASK_KILLED", "TASK_ERROR", "TASK_LOST", "TASK_DROPPED", "TASK_GONE",
        "TASK_GONE_BY_OPERATOR",
    ]
}
