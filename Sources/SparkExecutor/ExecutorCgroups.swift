import ExecutorCore
import Logging
import Isolation

extension CgroupIsolation {
    /// The cgroups an executor's tasks and workers get, as `configuration` asks (its cgroup under
    /// `SPARK_MESOS_EXECUTOR_CGROUP_PARENT` or its own, CFS quotas when turned on), or nil with one
    /// log line saying why and what is lost.
    static func forExecutor(_ configuration: ExecutorConfiguration, logger: Logger) -> CgroupIsolation? {
        guard configuration.cgroupsEnabled else {
            logger.notice(
                "cgroups turned off (SPARK_MESOS_EXECUTOR_CGROUPS=off): no per-task limits, usage from rusage")
            return nil
        }
        let settings = CgroupIsolation.Settings(
            name: CgroupIsolation.executorCgroupName(
                frameworkID: configuration.frameworkID, executorID: configuration.executorID),
            parent: configuration.cgroupParent, hardCPULimits: configuration.cgroupsEnableCFS)
        switch CgroupIsolation.detect(settings) {
        case .available(let isolation):
            logger.info("\(isolation.summary)")
            return isolation
        case .unavailable(let why):
            logger.warning(
                "tasks run without cgroups: \(why); lost: per-task memory and CPU limits, OOM attribution and cgroup containment (usage comes from rusage, orphans are still reaped and killed with their process group)"
            )
            return nil
        }
    }
}
