import Isolation
import TaskRunning
import Testing
import WorkerWire

@testable import WorkerPool

/// What a worker gets for a call: its payload moves into the run, and only a mini-task's result may
/// wait to share a write with the results after it (a task's finished result must not be lost to a
/// crash of the run behind it).
@Suite struct HandOverTests {
    static let request = CallRequest(taskID: "t1", function: "echo", payload: [1, 2, 3], environment: ["A": "1"])

    @Test func aMiniTasksResultMayWaitATasksMayNot() {
        var miniTask = WorkerPool.Call(Self.request, reply: .pipelined(PipelinedEndings(expected: 1), index: 0))
        #expect(miniTask.kind == .pipelined)
        let (miniRun, miniTaskReply) = WorkerPool.handOver(&miniTask, as: 5)
        #expect(miniTaskReply == nil && miniRun.resultMayWait)
        #expect(miniRun.id == 5 && miniRun.taskID == "t1" && miniRun.function == "echo")
        #expect(miniRun.payload == [1, 2, 3] && miniRun.environment == ["A": "1"])
        // The payload moved into the run: the table does not hold it twice.
        #expect(miniTask.payload.isEmpty)

        let (events, continuation) = AsyncStream.makeStream(of: TaskCallEvent.self)
        _ = events
        let reply = WorkerPool.TaskReply(events: continuation, control: TaskControl(onStarted: {}), limits: .none)
        var task = WorkerPool.Call(Self.request, reply: .task(reply))
        #expect(task.kind == .exclusive)
        let (taskRun, taskReply) = WorkerPool.handOver(&task, as: 6)
        #expect(taskReply === reply && !taskRun.resultMayWait)
        #expect(taskRun.payload == [1, 2, 3])
    }
}
