import Isolation
public import MesosProto
public import TaskRunning
public import WorkerPool
import WorkerProtocol
import WorkerWire

/// Runs closure tasks on a ``WorkerPool``: `TaskInfo.data` names a function of the worker and
/// its payload (see the README, "Closure tasks and workers"). Tasks with a command and no data go to `commandRunner`.
public struct ClosureTaskRunner: TaskRunner {
    public let pool: WorkerPool
    /// Where results larger than `resultSizeLimit` are written (under `results/`).
    public let sandbox: String
    /// The largest result returned inline in `TaskStatus.data`.
    public let resultSizeLimit: Int
    /// Runs command tasks (a `CommandTaskRunner`); nil rejects them as invalid.
    public let commandRunner: (any TaskRunner)?

    public init(
        pool: WorkerPool, sandbox: String, resultSizeLimit: Int = 64 * 1024, commandRunner: (any TaskRunner)? = nil
    ) {
        self.pool = pool
        self.sandbox = sandbox
        self.resultSizeLimit = resultSizeLimit
        self.commandRunner = commandRunner
    }

    public func run(_ task: Mesos_V1_TaskInfo, control: TaskControl) async -> TaskOutcome {
        if task.data.isEmpty {
            if task.hasCommand, let commandRunner { return await commandRunner.run(task, control: control) }
            return .error(
                reason: .taskInvalid,
                message: task.hasCommand
                    ? "command tasks are not run by this executor's closure runner"
                    : "the task has neither data (a closure) nor a command")
        }
        let closure: Sparkmesos_Worker_V1_Closure
        do {
            closure = try Sparkmesos_Worker_V1_Closure(taskData: [UInt8](task.data))
        } catch {
            return .error(reason: .taskInvalid, message: error.description)
        }
        let limits: CgroupLimits
        do {
            limits = try CgroupLimits(
                task: task, hardCPULimit: pool.configuration.isolation?.settings.hardCPULimits ?? false)
        } catch {
            return .error(reason: .taskInvalid, message: error.description)
        }
        let request = CallRequest(
            taskID: task.taskID.value, function: closure.function, payload: [UInt8](closure.payload),
            environment: closure.environment, limits: limits)
        let ending = await pool.run(request, control: control)
        let completion = ending.completion
        var measurements = TaskMeasurements()
        if let measured = ending.usage {
            measurements.source = "cgroup"
            measurements.peakMemoryBytes = measured.peakMemoryBytes
            measurements.userCPUSeconds = measured.userCPUMicroseconds.map { Double($0) / 1_000_000 }
            measurements.systemCPUSeconds = measured.systemCPUMicroseconds.map { Double($0) / 1_000_000 }
        }
        if case .memoryLimitReached(let limit) = completion {
            measurements.source = "cgroup"
            measurements.peakMemoryBytes = limit.peakBytes
            measurements.memoryLimitBytes = limit.limitBytes
            measurements.limitedResourceName = "mem"
            measurements.limitedResourceAmount = Double(limit.peakBytes) / 1_048_576
        }
        if measurements != TaskMeasurements() { control.record(measurements) }
        return outcome(of: completion, function: closure.function, taskID: task.taskID.value, started: ending.started)
    }

    private func outcome(of completion: CallCompletion, function: String, taskID: String, started: Bool)
        -> TaskOutcome
    {
        switch completion {
        case .result(let result):
            switch result.status {
            case .ok:
                switch LargeResults(sandbox: sandbox, limit: resultSizeLimit).store(result.data, name: taskID) {
                case .inline(let data):
                    return .succeeded(data: data, message: "closure '\(function)' returned \(data.count) bytes")
                case .file(let path, let size):
                    return .succeeded(
                        data: nil,
                        message:
                            "closure '\(function)' returned \(size) bytes (over the \(resultSizeLimit)-byte limit), written to \(path)",
                        dataFile: path)
                case .failed(let why):
                    return .failed(
                        reason: .commandExecutorFailed,
                        message: "closure '\(function)' returned a large result that could not be stored: \(why)")
                }
            case .error:
                return .failed(reason: .commandExecutorFailed, message: "closure '\(function)' threw: \(result.error)")
            case .cancelled:
                return .failed(
                    reason: .commandExecutorFailed,
                    message: "closure '\(function)' was \(result.error.isEmpty ? "cancelled" : result.error)")
            case .unknownFunction:
                return .error(reason: .taskInvalid, message: result.error)
            }
        case .workerEnded(let why):
            return .failed(reason: .commandExecutorFailed, message: "closure '\(function)' failed: \(why)")
        case .memoryLimitReached(let limit):
            return .failed(reason: .containerLimitationMemory, message: "closure '\(function)' failed: \(limit.text)")
        case .unavailable(let why):
            let text = "closure '\(function)' could not run: \(why)"
            return started
                ? .failed(reason: .commandExecutorFailed, message: text)
                : .launchFailed(reason: .containerLaunchFailed, message: text)
        case .cancelled(let why):
            return .failed(reason: .commandExecutorFailed, message: "closure '\(function)' \(why)")
        }
    }
}
