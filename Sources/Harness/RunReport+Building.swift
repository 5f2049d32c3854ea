import HarnessJobs
import Foundation
import LocalAgent
import MesosCodec
import ProcessSupervision

/// The facts a report is built from, gathered by ``JobRunner``.
struct RunFacts {
    var job: Job
    var executorPath: String
    var log: RunLog
    var agent: LocalAgentState
    var termination: String
    var exitedCleanly: Bool
    var shutdownSentAtMs: Double?
    var executorMayExitEarly: Bool
    var problems: [String]
    var leftovers: [String]
    var packageURI: String?
    var packageDownloads: Int
    var sandbox: String
    var keptSandbox: Bool
    var startedAt: Date
    var durationMs: Double
    var interrupted: Bool
}

extension RunReport {
    init(_ facts: RunFacts) {
        var log = facts.log
        var problems = facts.problems
        let exitAt = log.executorExitAtMs ?? facts.durationMs
        // A task the executor never finished is what the agent would report when the executor
        // is gone: TASK_LOST, made by the agent (here: the harness standing in for it).
        for id in facts.job.tasks.map(\.id) where log.launchedAt[id] != nil {
            let last = log.updates.last { $0.taskID == id }?.state
            if last.map({ !StateName.terminal.contains($0) }) ?? true {
                log.updates.append(
                    UpdateRecord(
                        atMs: exitAt, taskID: id, state: "TASK_LOST", uuid: "", source: "harness",
                        reason: "REASON_EXECUTOR_TERMINATED",
                        message: "the executor ended without a terminal update for this task", data: nil))
            }
        }
        let index = LogIndex(log: log, agent: facts.agent)
        let tasks = facts.job.tasks.map { Self.taskReport($0, log: log, index: index, facts: facts) }
        for task in tasks where !task.passed {
            let detail = task.error.map { " (\($0))" } ?? ""
            problems.append("task \(task.id) ended \(task.actual ?? "nowhere"), expected \(task.expected)\(detail)")
        }
        for task in tasks where !task.exactlyOnce {
            problems.append(
                "task \(task.id): updates not exactly-once or not acknowledged: "
                    + task.states.map {
                        "\($0.state)\($0.acknowledged ? "" : " (unacknowledged)")"
                    }.joined(separator: ", "))
        }
        let miniTasks = Self.miniTaskReports(facts.job, log: log)
        for (id, answers) in log.miniTaskAnswers.sorted(by: { $0.key < $1.key }) where answers > 1 {
            problems.append(
                "mini-task \(id) was answered \(answers) times; exactly one result is expected (a result"
                    + " sent again, unchanged, after an agent restart is not counted)")
        }
        for miniTask in miniTasks where !miniTask.passed {
            problems.append(
                "mini-task \(miniTask.id) ended \(miniTask.actual ?? "without a result"), expected \(miniTask.expected)"
            )
        }
        let violations = facts.agent.violations.map(\.description)
        problems += violations.map { "protocol violation: \($0)" }
        problems += facts.leftovers.map { "left running by the executor (killed): \($0)" }
        if let exitAt = log.executorExitAtMs, !facts.interrupted {
            if let shutdown = facts.shutdownSentAtMs, shutdown <= exitAt {
                if !facts.exitedCleanly {
                    problems.append("executor \(facts.termination) after SHUTDOWN; expected status 0")
                }
            } else if !facts.executorMayExitEarly {
                problems.append("executor \(facts.termination) before the harness sent SHUTDOWN")
            }
        }
        let passed = problems.isEmpty && !facts.interrupted
        self.init(
            job: facts.job.name, source: facts.job.source, mode: facts.job.executor.mode.rawValue,
            encoding: facts.job.executor.encoding.rawValue, checkpoint: facts.job.executor.checkpoint,
            executor: facts.executorPath, startedAt: ISO8601DateFormatter().string(from: facts.startedAt),
            durationMs: facts.durationMs, passed: passed, problems: problems, interrupted: facts.interrupted,
            executorExit: facts.termination, packageURI: facts.packageURI, packageDownloads: facts.packageDownloads,
            tasks: tasks, miniTasks: miniTasks, violations: violations, leftoverProcesses: facts.leftovers,
            sandbox: facts.keptSandbox ? facts.sandbox : nil,
            executorLog: passed ? nil : Self.tail(of: facts.sandbox + "/stderr", lines: 40), log: log)
    }

    /// The log's updates and progress by task, and the agent's updates by uuid: looked up once per
    /// task, not searched (a job of thousands of tasks is reported in a moment).
    struct LogIndex {
        var updates: [String: [UpdateRecord]] = [:]
        var progress: [String: [ProgressRecord]] = [:]
        var observed: [String: ObservedUpdate] = [:]

        init(log: RunLog, agent: LocalAgentState) {
            for update in log.updates { updates[update.taskID, default: []].append(update) }
            for record in log.progress { progress[record.taskID, default: []].append(record) }
            for update in agent.updates where !update.uuid.isEmpty {
                let key = RunReport.hex(update.uuid)
                if observed[key] == nil { observed[key] = update }
            }
        }
    }

    static func taskReport(_ task: JobTask, log: RunLog, index: LogIndex, facts: RunFacts) -> TaskReport {
        let updates = index.updates[task.id] ?? []
        var resends = 0
        let states = updates.map { update -> TaskStateRecord in
            let observed = update.uuid.isEmpty ? nil : index.observed[update.uuid]
            resends += observed?.duplicates ?? 0
            return TaskStateRecord(
                state: update.state, atMs: update.atMs, source: update.source, reason: update.reason,
                message: update.message, acknowledged: observed?.acknowledged ?? false, healthy: update.healthy,
                check: update.check)
        }
        let last = updates.last
        // Health and check updates repeat TASK_RUNNING by design; every other state comes once.
        let fromExecutor = states.filter { $0.source == "executor" }
        let transitions = fromExecutor.filter { !CheckText.isCheckReason($0.reason) }
        let endedByExecutor = last?.source == "executor"
        let exactlyOnce =
            Set(transitions.map(\.state)).count == transitions.count
            && (!endedByExecutor || fromExecutor.allSatisfy(\.acknowledged))
        let launched = log.launchedAt[task.id]
        let ended = last.flatMap { StateName.terminal.contains($0.state) ? $0.atMs : nil }
        let error = last.flatMap { $0.state == "TASK_FINISHED" ? nil : $0.message }
        let progress = index.progress[task.id] ?? []
        var report = TaskReport(
            id: task.id, kind: task.kind.name, expected: task.expect.mesosName, actual: last?.state,
            passed: last?.state == task.expect.mesosName, states: states, launchedAtMs: launched, endedAtMs: ended,
            durationMs: launched.flatMap { start in ended.map { $0 - start } },
            result: last?.data ?? firstLine(facts.sandbox, task.id),
            error: error, exit: error.flatMap(exitDescription), exactlyOnce: exactlyOnce, resends: resends,
            usage: last?.labels, limitation: last?.limitation)
        if !progress.isEmpty {
            report.progressMessages = progress.count
            report.lastProgress = progress.last
        }
        return report
    }

    static func miniTaskReports(_ job: Job, log: RunLog) -> [MiniTaskReport] {
        job.miniTasks.map { spec in
            let result = log.miniTaskResults[spec.id]
            let sent = log.steps.first { $0.kind == .miniTasks && $0.tasks.contains(spec.id) }?.atMs
            return MiniTaskReport(
                id: spec.id, function: spec.function, expected: spec.expect.rawValue.uppercased(),
                actual: result?.state, passed: result?.state == spec.expect.rawValue.uppercased(), sentAtMs: sent,
                endedAtMs: result?.atMs, result: result.map { $0.data.isEmpty ? $0.dataFile : $0.data },
                error: result.flatMap { $0.error.isEmpty ? nil : $0.error },
                resent: log.miniTaskResends?[spec.id])
        }
    }

    /// "exit 3" or "SIGKILL" from an executor's message ("Command exited with status 3", "… signal SIGKILL (9)").
    static func exitDescription(_ message: String) -> String? {
        if let range = message.range(of: "exited with status ") {
            let digits = message[range.upperBound...].prefix { $0.isNumber }
            if !digits.isEmpty { return "exit \(digits)" }
        }
        if let range = message.range(of: "by signal ", options: .backwards) {
            let name = message[range.upperBound...].prefix { $0.isLetter || $0.isNumber }
            if !name.isEmpty { return String(name) }
        }
        return nil
    }

    static func firstLine(_ sandbox: String, _ taskID: String) -> String? {
        let path = sandbox + "/" + StandardStreamFiles.taskDirectory(taskID) + "/stdout"
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        let line = String(decoding: data.prefix(4096), as: UTF8.self).split(separator: "\n").first
        return line.map { String($0.prefix(200)) }
    }

    static func tail(of path: String, lines: Int) -> String? {
        guard let data = FileManager.default.contents(atPath: path), !data.isEmpty else { return nil }
        let text = String(decoding: data.suffix(64 * 1024), as: UTF8.self)
        return text.split(separator: "\n", omittingEmptySubsequences: false).suffix(lines).joined(separator: "\n")
    }

    static func hex(_ bytes: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
