import TaskRunning
public import MesosProto
import TaskChecks

/// Health checks, checks and `max_completion_time` (the README's section of that name): what each result does
/// to the task.
extension TaskLifecycle {
    /// Why a task's checks or deadline cannot be honoured; the master's words.
    struct WatchProblem: Error {
        let text: String
    }

    /// Validates the task's health check, check and deadline as the master would (a task that
    /// slipped past it ends TASK_ERROR / REASON_TASK_INVALID), records the checks and returns the
    /// deadline, if any.
    mutating func prepareWatching(_ id: String) -> Result<Duration?, WatchProblem> {
        guard let info = records[id]?.info else { return .success(nil) }
        var checks: [CheckDefinition] = []
        if info.hasKillPolicy, info.killPolicy.hasGracePeriod, info.killPolicy.gracePeriod.nanoseconds < 0 {
            return .failure(WatchProblem(text: "Task's 'kill_policy.grace_period' must be non-negative"))
        }
        var deadline: Duration?
        if info.hasMaxCompletionTime {
            let nanoseconds = info.maxCompletionTime.nanoseconds
            guard nanoseconds >= 0 else {
                return .failure(WatchProblem(text: "Task's `max_completion_time` must be non-negative"))
            }
            if nanoseconds > 0 { deadline = .nanoseconds(nanoseconds) }
        }
        if info.hasCheck {
            do {
                checks.append(try CheckDefinition(check: info.check))
            } catch {
                return .failure(WatchProblem(text: "Task uses invalid check: \(error)"))
            }
        }
        if info.hasHealthCheck {
            do {
                checks.append(try CheckDefinition(health: info.healthCheck))
            } catch {
                return .failure(WatchProblem(text: "Task uses invalid health check: \(error)"))
            }
        }
        records[id]?.checks = checks
        records[id]?.watched = !checks.isEmpty || deadline != nil
        return .success(deadline)
    }

    /// A health result worth reporting (every counted failure, the first success, a recovery).
    /// Dropped unless the task is running (never after TASK_KILLING or the terminal update).
    public mutating func healthResult(_ id: String, healthy: Bool) -> [Action] {
        guard let record = records[id], record.phase == .running else { return [] }
        records[id]?.healthy = healthy
        return [
            .report(
                Report(
                    taskID: id, state: SparkTaskState.running.mesosState, reason: .taskHealthCheckStatusUpdated,
                    healthy: healthy,
                    checkStatus: record.checkStatus))
        ]
    }

    /// The health check failed `consecutive_failures` times: the task is killed with its kill policy.
    public mutating func healthCheckFailed(_ id: String, because why: String) -> [Action] {
        guard records[id]?.phase == .running else { return [] }
        return kill(id, cause: .healthCheck(why), grace: nil)
    }

    /// A general check's result changed. Dropped unless the task is running.
    public mutating func checkResult(_ id: String, status: Mesos_V1_CheckStatusInfo) -> [Action] {
        guard let record = records[id], record.phase == .running else { return [] }
        records[id]?.checkStatus = status
        return [
            .report(
                Report(
                    taskID: id, state: SparkTaskState.running.mesosState, reason: .taskCheckStatusUpdated,
                    healthy: record.healthy,
                    checkStatus: status))
        ]
    }

    /// `max_completion_time` passed: killed at once (SIGTERM then SIGKILL), no TASK_KILLING, and it
    /// ends TASK_FAILED / REASON_MAX_COMPLETION_TIME_REACHED.
    public mutating func deadlineReached(_ id: String) -> [Action] {
        guard let record = records[id] else { return [] }
        switch record.phase {
        case .launching, .running:
            let limit = Duration.nanoseconds(record.info.maxCompletionTime.nanoseconds)
            return kill(id, cause: .maxCompletionTime(limit.shortText), grace: .zero)
        case .exited, .killing, .terminal:
            return []
        }
    }

    /// The empty check status of the task's check, which Mesos puts into every status it builds
    /// from scratch; nil when the task has no check.
    public func emptyCheckStatus(of id: String) -> Mesos_V1_CheckStatusInfo? {
        guard let check = records[id]?.checks.first(where: { $0.kind == .check }) else { return nil }
        return CheckStatus.empty(check.probe.type)
    }
}

extension KillCause {
    /// Whether TASK_KILLING is sent for it (framework permitting).
    var announcesKilling: Bool {
        if case .maxCompletionTime = self { return false }
        return true
    }
}
