import Isolation
import TaskRunning
import ProcessSupervision
import Synchronization
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// Every process of one command task: its top process, and its cgroup when there is one (else its
/// process group). Stop requests reach all of them, and a terminate's grace period is everybody's:
/// the top process exiting early does not cut the others short.
struct TaskProcesses: Sendable {
    let child: ChildProcess
    let cgroup: Cgroup?
    /// Without a cgroup: the `NAME=value` every process of the task inherited, by which descendants
    /// that left its session and were re-parented to the executor are found when it ends.
    var marker: String? = nil

    /// The variable that carries ``marker``.
    static let markerVariable = "SPARK_MESOS_EXECUTOR_TASK_MARK"
    private static let markers = Atomic<Int>(0)

    /// A marker no other task of this executor has.
    static func newMarker() -> String {
        "\(getpid())-\(markers.add(1, ordering: .relaxed).newValue)"
    }

    struct Ending: Sendable {
        var termination: Termination
        var measurements: TaskMeasurements
    }

    /// Waits for the task to end, obeying `control`'s stop requests, then kills whatever is left
    /// (setsid'd and double-forked descendants included when there is a cgroup).
    func supervise(obeying control: TaskControl) async -> Ending {
        let stops = StopState()
        let requests = control.stopRequestStream()
        let (termination, rusage) = await withTaskGroup(of: (Termination, ProcessUsage)?.self) { group in
            group.addTask { await child.waitWithUsage() }
            group.addTask {
                for await request in requests {
                    stops.note(request)
                    await deliver(request)
                }
                return nil
            }
            var ended: (Termination, ProcessUsage) = (.exited(-1), ProcessUsage())
            for await value in group {
                if let value {
                    ended = value
                    break
                }
            }
            // Asked to stop, the rest of the task keeps its grace period: wait until every process is
            // gone or the runtime's escalation (a force kill, still delivered) arrives.
            while stops.terminating && !stops.forced && !everythingGone() {
                ProcessReaper.shared.sweepOrphans()
                do { try await Task.sleep(for: .milliseconds(10)) } catch { break }
            }
            group.cancelAll()
            return ended
        }
        await control.processEnded()
        var measurements = TaskMeasurements()
        if let cgroup {
            // What the task left running goes with it. An empty cgroup is not killed: nothing but
            // our own joins can enter it, and a killed one is not reused (see CgroupIsolation).
            if !cgroup.isEmpty { await cgroup.killAll() }
            let usage = cgroup.usage().filled(from: rusage)
            measurements.source = "cgroup"
            measurements.peakMemoryBytes = usage.peakMemoryBytes
            measurements.userCPUSeconds = Double(usage.userCPUMicroseconds) / 1_000_000
            measurements.systemCPUSeconds = Double(usage.systemCPUMicroseconds) / 1_000_000
            measurements.memoryLimitBytes = cgroup.limits.memoryBytes
            if cgroup.limits.cpuQuota != nil { measurements.cpuThrottledPeriods = cgroup.throttledPeriods }
        } else {
            measurements.source = "rusage"
            measurements.peakMemoryBytes = rusage.peakMemoryBytes
            measurements.userCPUSeconds = Double(rusage.userCPUMicroseconds) / 1_000_000
            measurements.systemCPUSeconds = Double(rusage.systemCPUMicroseconds) / 1_000_000
        }
        // Whatever the task left behind in its process group goes with it, and without a cgroup also
        // what left its session (found among our orphans by the marker it inherited).
        let groupLeft = killpg(child.pid, SIGKILL) == 0
        if let marker {
            await ProcessReaper.shared.killOrphans(carrying: Self.markerVariable + "=" + marker, lookAgain: groupLeft)
        }
        ProcessReaper.shared.reapExitedOrphans()
        return Ending(termination: termination, measurements: measurements)
    }

    private func deliver(_ request: StopRequest) async {
        let signal = request == .terminate ? SIGTERM : SIGKILL
        if let cgroup {
            if request == .forceKill { await cgroup.killAll() } else { cgroup.signalAll(signal) }
        }
        child.signalGroup(signal)
    }

    private func everythingGone() -> Bool {
        if let cgroup { return cgroup.isEmpty }
        return killpg(child.pid, 0) != 0 && errno == ESRCH
    }

    /// What the runtime has asked so far.
    private final class StopState: Sendable {
        private let state = LockedValue((terminating: false, forced: false))
        var terminating: Bool { state.withLock { $0.terminating } }
        var forced: Bool { state.withLock { $0.forced } }
        func note(_ request: StopRequest) {
            state.withLock { state in
                if request == .terminate { state.terminating = true } else { state.forced = true }
            }
        }
    }
}
