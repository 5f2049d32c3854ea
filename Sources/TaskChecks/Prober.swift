public import ProcessSupervision

/// Runs one attempt of a probe. The live one does I/O; tests script results.
public protocol Prober: Sendable {
    /// One attempt, bounded by `timeout` (nil: unbounded). A timeout or a failure to run is `.error`.
    func probe(_ probe: CheckDefinition.Probe, timeout: Duration?) async -> ProbeResult
}

/// Where a task's COMMAND checks run: the task's environment and sandbox.
public struct CheckContext: Sendable {
    /// The task's environment (the check command's own variables are added on top).
    public var environment: [String: String]
    /// The working directory: the sandbox.
    public var workingDirectory: String
    /// Opens what a COMMAND check joins the task's cgroups with before it execs (as Mesos runs
    /// checks inside the task's container); the spawn closes them. Empty when the task has no cgroup.
    public var joinCgroups: @Sendable () -> CgroupJoin
    /// The user COMMAND checks run as (the task's); nil: the executor's.
    public var user: UserIdentity?
    /// Why COMMAND checks cannot run as the task does: each ends in this error.
    public var unavailable: String?

    public init(
        environment: [String: String], workingDirectory: String,
        joinCgroups: @escaping @Sendable () -> CgroupJoin = { CgroupJoin() }, user: UserIdentity? = nil,
        unavailable: String? = nil
    ) {
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.joinCgroups = joinCgroups
        self.user = user
        self.unavailable = unavailable
    }
}

extension Duration {
    /// `1s`, `250ms`: for messages.
    public var shortText: String {
        let ms = components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000
        return ms % 1000 == 0 ? "\(ms / 1000)s" : "\(ms)ms"
    }
}

/// Runs `body`; if it takes longer than `timeout`, cancels it and returns `.error(<what> timed out after …)`.
func bounded(
    _ timeout: Duration?, _ what: String, _ body: @escaping @Sendable () async -> ProbeResult
) async -> ProbeResult {
    guard let timeout else { return await body() }
    return await withTaskGroup(of: ProbeResult?.self) { group in
        group.addTask { await body() }
        group.addTask {
            guard (try? await Task.sleep(for: timeout)) != nil else { return nil }
            return .error("\(what) timed out after \(timeout.shortText)")
        }
        var result = ProbeResult.error("\(what) was cancelled")
        if let first = await group.next(), let first {
            result = first
        }
        group.cancelAll()
        return result
    }
}
