import ExecutorCore
import MesosProto
import Synchronization

/// The task runner, handed to the runtime before it exists: the executor subscribes first and sets
/// up what tasks need (cgroups, the package cache, the Spark runner) while SUBSCRIBE is on its way.
/// Every call waits until ``resolve(_:)`` was called.
final class DeferredTaskRunner: TaskRunner {
    private enum State {
        case waiting([CheckedContinuation<any TaskRunner, Never>])
        case ready(any TaskRunner)
    }

    private let state = Mutex(State.waiting([]))

    /// Sets the runner; every call waiting for it goes on. Call once.
    func resolve(_ runner: any TaskRunner) {
        let waiting = state.withLock { state -> [CheckedContinuation<any TaskRunner, Never>] in
            guard case .waiting(let waiting) = state else { return [] }
            state = .ready(runner)
            return waiting
        }
        for continuation in waiting { continuation.resume(returning: runner) }
    }

    private func runner() async -> any TaskRunner {
        await withCheckedContinuation { continuation in
            let ready = state.withLock { state -> (any TaskRunner)? in
                switch state {
                case .ready(let runner): return runner
                case .waiting(let waiting):
                    state = .waiting(waiting + [continuation])
                    return nil
                }
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    func run(_ task: Mesos_V1_TaskInfo, control: TaskControl) async -> TaskOutcome {
        await runner().run(task, control: control)
    }

    func executorSubscribed(_ subscribed: Mesos_V1_Executor_Event.Subscribed) async -> (@Sendable () async -> Void)? {
        await runner().executorSubscribed(subscribed)
    }

    func frameworkMessage(_ data: [UInt8], reply: @escaping @Sendable ([UInt8]) async -> Void) async -> Bool {
        await runner().frameworkMessage(data, reply: reply)
    }

    func executorShuttingDown() async {
        await runner().executorShuttingDown()
    }

    func checkEnvironment(for task: Mesos_V1_TaskInfo) async -> [String: String] {
        await runner().checkEnvironment(for: task)
    }
}
