import TaskRunning
import Isolation
import Logging
import MesosProto
import TaskChecks
import ProcessSupervision

/// Health checks, checks and deadlines run as child tasks of `run()`'s group, one per check and
/// one per deadline, each stopped when its task is killed or ends.
extension ExecutorRuntime {
    func startChecks(_ id: String, _ checks: [CheckDefinition]) {
        guard let task = lifecycle.task(id) else { return }
        let hooks = self.hooks
        let sandbox = configuration.sandbox
        let control = controls[id]
        for definition in checks {
            logger.debug("checking", metadata: ["task": "\(id)", "check": "\(definition.name)"])
            watch(id) {
                let process = await hooks.checkProcess(for: task)
                let context = CheckContext(
                    environment: process.environment, workingDirectory: process.workingDirectory ?? sandbox,
                    joinCgroups: { (try? control?.cgroup?.openSpawnJoin()) ?? CgroupJoin() }, user: process.user,
                    unavailable: process.unavailable)
                await Checker.run(definition, prober: LiveProber(context: context), clock: ContinuousClock()) {
                    action in
                    await self.checkAction(id, action)
                }
            }
        }
    }

    func armDeadline(_ id: String, after limit: Duration) {
        watch(id) {
            guard (try? await Task.sleep(for: limit)) != nil else { return }
            await self.deadlineReached(id, limit)
        }
    }

    func stopWatching(_ id: String) {
        for stop in watchers.removeValue(forKey: id) ?? [] { stop.finish() }
    }

    /// Returns false once the task no longer wants results (it is being killed, its process has
    /// ended, or it has ended).
    private func checkAction(_ id: String, _ action: CheckScheduler.Action) -> Bool {
        guard lifecycle.isActive(id), watchers[id] != nil else { return false }
        switch action {
        case .reportHealth(let healthy):
            perform(lifecycle.healthResult(id, healthy: healthy))
        case .reportCheck(let status):
            perform(lifecycle.checkResult(id, status: status))
        case .killTask(let why):
            logger.info("killing an unhealthy task", metadata: ["task": "\(id)", "why": "\(why)"])
            perform(lifecycle.healthCheckFailed(id, because: why))
            return false
        case .wait, .probe:
            break
        }
        return watchers[id] != nil
    }

    private func deadlineReached(_ id: String, _ limit: Duration) {
        guard watchers[id] != nil else { return }
        logger.info(
            "killing a task which exceeded its maximum completion time",
            metadata: ["task": "\(id)", "max_completion_time": "\(limit.shortText)"])
        perform(lifecycle.deadlineReached(id))
    }

    /// Runs `body` as a child task until it returns or `stopWatching(id)` is called.
    private func watch(_ id: String, _ body: @escaping @Sendable () async -> Void) {
        let (stopped, stop) = AsyncStream.makeStream(of: Never.self)
        watchers[id, default: []].append(stop)
        schedule {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await body() }
                group.addTask { for await _ in stopped {} }
                _ = await group.next()
                group.cancelAll()
            }
        }
    }
}
