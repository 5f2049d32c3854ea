public import MesosProto

/// The pure state machine of one check or health check: when to probe, and what each result
/// means, as Mesos's checker and health checker decide it (the README's "Health checks, checks and
/// max_completion_time" says what this executor does).
///
/// Time is the elapsed `Duration` since checking started, given by the caller; no clocks, no I/O.
/// The driver performs the actions and feeds back what happened.
public struct CheckScheduler: Sendable {
    public enum Action: Sendable, Equatable {
        /// Sleep until this much time has passed since the start, then call `timerFired(at:)`.
        case wait(until: Duration)
        /// Run one attempt, bounded by `timeout` (nil: no bound), then call `probeEnded(_:at:)`.
        case probe(timeout: Duration?)
        /// Report the task's health (a TASK_RUNNING update with `healthy`).
        case reportHealth(healthy: Bool)
        /// Kill the task: `consecutive_failures` counted failures in a row. `message` names the check.
        case killTask(message: String)
        /// Report a changed general check result (a TASK_RUNNING update with `check_status`).
        case reportCheck(Mesos_V1_CheckStatusInfo)
    }

    public let definition: CheckDefinition
    /// Health: no success yet (the grace period can still apply, the first success is reported).
    private var initializing = true
    private var failures: UInt32 = 0
    /// General checks: the last status reported (or the empty one), compared byte-wise as Mesos does.
    private var previous: Mesos_V1_CheckStatusInfo
    private var stopped = false
    private var probing = false

    public init(_ definition: CheckDefinition) {
        self.definition = definition
        previous = CheckStatus.empty(definition.probe.type)
    }

    /// Counted failures in a row (health checks).
    public var consecutiveFailures: UInt32 { failures }

    /// Checking starts now (elapsed zero): the first attempt comes after `delay`.
    public func start() -> [Action] {
        stopped ? [] : [.wait(until: definition.delay)]
    }

    /// The wait asked for has passed.
    public mutating func timerFired(at now: Duration) -> [Action] {
        guard !stopped, !probing else { return [] }
        probing = true
        return [.probe(timeout: definition.timeout)]
    }

    /// An attempt ended with `result` at `now`. The next comes `interval` after it ended.
    public mutating func probeEnded(_ result: ProbeResult, at now: Duration) -> [Action] {
        guard !stopped, probing else { return [] }
        probing = false
        var actions: [Action]
        switch definition.kind {
        case .health: actions = health(result, at: now)
        case .check: actions = check(result)
        }
        if !stopped { actions.append(.wait(until: now + definition.interval)) }
        return actions
    }

    /// The task is being killed or has ended: nothing more is probed or reported.
    public mutating func stop() {
        stopped = true
    }

    public var isStopped: Bool { stopped }

    private mutating func health(_ result: ProbeResult, at now: Duration) -> [Action] {
        if result.isHealthy {
            defer {
                initializing = false
                failures = 0
            }
            return initializing || failures > 0 ? [.reportHealth(healthy: true)] : []
        }
        if initializing, definition.gracePeriod > .zero, now <= definition.gracePeriod {
            return []
        }
        failures += 1
        guard failures >= definition.consecutiveFailures else { return [.reportHealth(healthy: false)] }
        stopped = true
        let times = failures == 1 ? "once" : "\(failures) consecutive times"
        return [
            .reportHealth(healthy: false),
            .killTask(message: "its \(definition.name) failed \(times) (last: \(result.text))"),
        ]
    }

    private mutating func check(_ result: ProbeResult) -> [Action] {
        let status = result.checkStatus(type: definition.probe.type)
        guard status != previous else { return [] }
        previous = status
        return [.reportCheck(status)]
    }
}
