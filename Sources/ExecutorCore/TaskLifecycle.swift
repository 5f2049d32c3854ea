public import TaskRunning
public import MesosProto
import MesosCodec
public import TaskChecks

/// The pure state machine of every task this executor runs: it takes what happened and returns
/// what to do. No I/O, no clocks: the runtime performs the actions and feeds back the results.
public struct TaskLifecycle: Sendable {
    /// Whether TASK_KILLING may be sent (framework capability TASK_KILLING_STATE).
    public var killingStateAllowed = false
    /// The grace period when neither the KILL nor the task carries a kill policy.
    public let defaultKillGrace: Duration
    /// Standing in for Mesos's command executor, which runs one task: every task launched after
    /// the first ends `TASK_FAILED` as there, and the first runs on.
    public var runsOneTaskOnly = false
    static let secondTaskMessage = "Attempted to run multiple tasks using a \"command\" executor"

    public enum Action: Sendable, Equatable {
        /// Send a status update for the task.
        case report(Report)
        /// Start running the task (spawn its process or hand it to a worker).
        case start(taskID: String)
        /// Ask the task to stop (SIGTERM to its process tree / cancel a closure); escalate after `grace`.
        case terminate(taskID: String, grace: Duration)
        /// Stop the task now (SIGKILL to its process tree / kill its worker).
        case forceKill(taskID: String)
        /// Start its health check and check (it is running now).
        case startChecks(taskID: String, [CheckDefinition])
        /// Call `deadlineReached` after `after` unless the task stops being watched first.
        case armDeadline(taskID: String, after: Duration)
        /// Stop its checks and its deadline: it is being killed or has ended.
        case stopWatching(taskID: String)
    }

    /// The content of one status update; the runtime adds uuid, source, ids and timestamp.
    public struct Report: Sendable, Equatable {
        public var taskID: String
        public var state: Mesos_V1_TaskState
        public var reason: Mesos_V1_TaskStatus.Reason?
        public var message: String?
        public var data: [UInt8]?
        /// The label `result.data_file`: where a result too large for `data` was written.
        public var dataFile: String?
        /// `TaskStatus.healthy`: set on health updates and on the terminal update after a health kill.
        public var healthy: Bool?
        /// `TaskStatus.check_status`; nil means the empty status of the task's check, if it has one.
        public var checkStatus: Mesos_V1_CheckStatusInfo?

        public init(
            taskID: String, state: Mesos_V1_TaskState, reason: Mesos_V1_TaskStatus.Reason? = nil,
            message: String? = nil, data: [UInt8]? = nil, dataFile: String? = nil, healthy: Bool? = nil,
            checkStatus: Mesos_V1_CheckStatusInfo? = nil
        ) {
            self.taskID = taskID
            self.state = state
            self.reason = reason
            self.message = message
            self.data = data
            self.dataFile = dataFile
            self.healthy = healthy
            self.checkStatus = checkStatus
        }
    }

    enum Phase: Sendable, Equatable {
        case launching
        case running
        /// The task's own process ended while it ran; its runner is cleaning up, and its outcome
        /// will be the process's.
        case exited
        case killing(escalated: Bool)
        case terminal(Mesos_V1_TaskState)
    }

    struct Record: Sendable {
        var info: Mesos_V1_TaskInfo
        /// Launch order.
        let sequence: Int
        var phase: Phase
        var killCause: KillCause?
        var grace: Duration?
        var group: Int?
        var acknowledged = false
        /// Health check and check, validated at launch.
        var checks: [CheckDefinition] = []
        /// Whether checks or a deadline may be running for it.
        var watched = false
        /// The last health and check result reported, carried by the next health or check update.
        var healthy: Bool?
        var checkStatus: Mesos_V1_CheckStatusInfo?
    }

    /// Tasks not yet forgotten: active ones, and ended ones until the agent acknowledged their
    /// terminal update. After that a task is gone from here (as from Mesos's own executors), so
    /// a long-lived executor holds only what is in flight, however many tasks it has run.
    var records: [String: Record] = [:]
    /// The ids of `records` that have not reached a terminal state.
    private var active: Set<String> = []
    private var nextSequence = 0
    private var nextGroup = 0

    public init(defaultKillGrace: Duration = .seconds(3)) {
        self.defaultKillGrace = defaultKillGrace
    }

    // MARK: Queries

    /// Ids of tasks that have not reached a terminal state, in launch order.
    public var activeTaskIDs: [String] {
        active.sorted { records[$0]?.sequence ?? 0 < records[$1]?.sequence ?? 0 }
    }

    /// Whether any task has not reached a terminal state.
    public var hasActiveTasks: Bool { !active.isEmpty }

    /// Tasks launched whose updates the agent has not acknowledged even once (for SUBSCRIBE).
    public var unacknowledgedTasks: [Mesos_V1_TaskInfo] {
        records.values.filter { !$0.acknowledged }.sorted { $0.sequence < $1.sequence }.map(\.info)
    }

    /// A task still remembered: active, or ended with its terminal update not yet acknowledged.
    public func task(_ id: String) -> Mesos_V1_TaskInfo? { records[id]?.info }

    /// Whether any task was ever launched.
    public var hasTasks: Bool { nextSequence > 0 }

    public func isActive(_ id: String) -> Bool { active.contains(id) }

    public func terminalState(of id: String) -> Mesos_V1_TaskState? {
        if case .terminal(let state) = records[id]?.phase { return state }
        return nil
    }

    // MARK: Inputs

    /// A LAUNCH. Validation failures end the task with TASK_ERROR; a valid task starts.
    public mutating func launch(_ task: Mesos_V1_TaskInfo) -> [Action] {
        launch([task], grouped: false)
    }

    /// A LAUNCH_GROUP: every task starts; when one fails or is killed, the rest are killed.
    public mutating func launchGroup(_ tasks: [Mesos_V1_TaskInfo]) -> [Action] {
        launch(tasks, grouped: true)
    }

    private mutating func launch(_ tasks: [Mesos_V1_TaskInfo], grouped: Bool) -> [Action] {
        var actions: [Action] = []
        let group = grouped ? nextGroup : nil
        if grouped { nextGroup += 1 }
        for task in tasks {
            let id = task.taskID.value
            if records[id] != nil {
                actions += refuseDuplicate(task)
                continue
            }
            if runsOneTaskOnly && hasTasks {
                actions.append(.report(Report(taskID: id, state: .taskFailed, message: Self.secondTaskMessage)))
                continue
            }
            records[id] = Record(info: task, sequence: nextSequence, phase: .launching, group: group)
            nextSequence += 1
            active.insert(id)
            let watching = prepareWatching(id)
            if case .failure(let problem) = watching {
                end(id, as: .taskError)
                actions.append(
                    .report(Report(taskID: id, state: .taskError, reason: .taskInvalid, message: problem.text)))
                continue
            }
            actions.append(.report(Report(taskID: id, state: SparkTaskState.launching.mesosState)))
            if case .success(let deadline?) = watching { actions.append(.armDeadline(taskID: id, after: deadline)) }
            actions.append(.start(taskID: id))
        }
        return actions
    }

    private mutating func refuseDuplicate(_ task: Mesos_V1_TaskInfo) -> [Action] {
        let id = task.taskID.value
        // The agent tracks tasks by id, so the refusal below ends the id in Mesos's eyes: a task
        // still running under it would be invisible to the scheduler, so it is stopped too.
        var actions: [Action] = []
        if isActive(id) {
            records[id]?.killCause = .duplicateLaunch
            end(id, as: .taskError)
            actions.append(.forceKill(taskID: id))
            if records[id]?.watched == true { actions.append(.stopWatching(taskID: id)) }
        }
        actions.append(
            .report(
                Report(
                    taskID: id, state: .taskError, reason: .taskInvalid,
                    message: "duplicate task id '\(id)': a task with this id was already launched on this executor")))
        return actions
    }

    /// The task's process (or closure) is running.
    public mutating func started(_ id: String) -> [Action] {
        guard let record = records[id], record.phase == .launching else { return [] }
        records[id]?.phase = .running
        var actions: [Action] = [.report(Report(taskID: id, state: SparkTaskState.running.mesosState))]
        if !record.checks.isEmpty { actions.append(.startChecks(taskID: id, record.checks)) }
        return actions
    }

    /// A running task's own process ended (its runner cleans up before it tells the outcome): its
    /// checks and deadline stop, so that the cleanup killing a COMMAND check in its cgroup is no
    /// failed check, and a kill from now on is ignored, the task having ended first — as Mesos's
    /// command executor stops its checkers when it reaps the task and reports it by its exit status.
    public mutating func processEnded(_ id: String) -> [Action] {
        guard let record = records[id], record.phase == .running else { return [] }
        records[id]?.phase = .exited
        records[id]?.watched = false
        return record.watched ? [.stopWatching(taskID: id)] : []
    }

    /// The task ended (or could not start); `outcome` is what its runner saw.
    public mutating func ended(_ id: String, _ outcome: TaskOutcome) -> [Action] {
        guard let record = records[id] else { return [] }
        if case .terminal = record.phase { return [] }
        let report: Report
        if let cause = record.killCause {
            var text = cause.text
            // A zero grace period (a max_completion_time kill) escalates at once: nothing worth saying.
            if case .killing(escalated: true) = record.phase, record.grace ?? .zero > .zero {
                text += " (SIGKILL after the \(format(record.grace ?? .zero)) grace period)"
            }
            if case .maxCompletionTime = cause {
                report = Report(
                    taskID: id, state: SparkTaskState.failed.mesosState, reason: .maxCompletionTimeReached,
                    message: "Task \(text); \(outcome.summary)")
            } else {
                var killed = Report(
                    taskID: id, state: SparkTaskState.killed.mesosState, reason: killReason(cause),
                    message: "Task \(text); \(outcome.summary)")
                if case .healthCheck = cause { killed.healthy = false }
                report = killed
            }
        } else {
            switch outcome {
            case .succeeded(let data, let message, let dataFile):
                report = Report(
                    taskID: id, state: SparkTaskState.finished.mesosState, message: message, data: data,
                    dataFile: dataFile)
            case .failed(let reason, let message), .launchFailed(let reason, let message):
                report = Report(taskID: id, state: SparkTaskState.failed.mesosState, reason: reason, message: message)
            case .error(let reason, let message):
                report = Report(taskID: id, state: .taskError, reason: reason, message: message)
            }
        }
        end(id, as: report.state)
        var actions: [Action] = [.report(report)]
        if record.watched { actions.append(.stopWatching(taskID: id)) }
        if let group = record.group, report.state != .taskFinished {
            for other in activeTaskIDs where records[other]?.group == group {
                actions += kill(other, cause: .groupMember(taskID: id, state: report.state), grace: nil)
            }
        }
        return actions
    }

    private mutating func end(_ id: String, as state: Mesos_V1_TaskState) {
        records[id]?.phase = .terminal(state)
        active.remove(id)
    }

    /// A KILL event. Unknown and finished tasks, and those whose process has ended, are left alone
    /// (as Mesos's executors do); a repeated KILL can only shorten the grace period.
    public mutating func kill(_ id: String, policy: Mesos_V1_KillPolicy?) -> [Action] {
        let grace = policy.flatMap { $0.hasGracePeriod ? Duration.nanoseconds($0.gracePeriod.nanoseconds) : nil }
        return kill(id, cause: .framework, grace: grace)
    }

    /// SHUTDOWN (or a lost agent): every active task is asked to stop within `grace`.
    public mutating func killAll(grace: Duration, because why: String) -> [Action] {
        activeTaskIDs.flatMap { kill($0, cause: .shutdown(why), grace: grace) }
    }

    /// The grace period of a task being killed ran out.
    public mutating func graceExpired(_ id: String) -> [Action] {
        guard case .killing(escalated: false) = records[id]?.phase else { return [] }
        records[id]?.phase = .killing(escalated: true)
        return [.forceKill(taskID: id)]
    }

    /// The agent acknowledged an update of this task in `state`. Once its terminal update is
    /// acknowledged, the task is forgotten.
    public mutating func acknowledged(_ id: String, state: Mesos_V1_TaskState?) {
        guard let record = records[id] else { return }
        if let state, state.isTerminal, case .terminal = record.phase {
            records[id] = nil
        } else {
            records[id]?.acknowledged = true
        }
    }

    mutating func kill(_ id: String, cause: KillCause, grace requested: Duration?) -> [Action] {
        guard let record = records[id] else { return [] }
        let taskGrace =
            record.info.killPolicy.hasGracePeriod
            ? Duration.nanoseconds(record.info.killPolicy.gracePeriod.nanoseconds) : nil
        let grace = max(.zero, requested ?? taskGrace ?? defaultKillGrace)
        switch record.phase {
        case .terminal, .killing(escalated: true), .exited:
            return []
        case .killing(escalated: false):
            guard let current = record.grace, grace < current else { return [] }
            records[id]?.grace = grace
            return [.terminate(taskID: id, grace: grace)]
        case .launching, .running:
            records[id]?.killCause = cause
            records[id]?.grace = grace
            records[id]?.phase = .killing(escalated: false)
            var actions: [Action] = []
            if record.watched { actions.append(.stopWatching(taskID: id)) }
            // Mesos's executors send no TASK_KILLING for a max_completion_time kill.
            if killingStateAllowed, cause.announcesKilling {
                actions.append(.report(Report(taskID: id, state: .taskKilling, message: "Task \(cause.text)")))
            }
            actions.append(.terminate(taskID: id, grace: grace))
            return actions
        }
    }

    private func killReason(_ cause: KillCause) -> Mesos_V1_TaskStatus.Reason? {
        switch cause {
        case .framework: return nil
        case .groupMember: return .taskGroupInvalid
        case .shutdown: return .executorTerminated
        case .duplicateLaunch: return .taskInvalid
        case .healthCheck: return nil
        case .maxCompletionTime: return .maxCompletionTimeReached
        }
    }

    private func format(_ duration: Duration) -> String {
        let ms = duration.nanosecondsCount / 1_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}
