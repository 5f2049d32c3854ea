import SystemSupport
import TaskRunning
import Testing

/// How a task's stop requests reach its runner: in order, kept until the runner listens, none once
/// the run is over.
struct TaskControlTests {
    private static func control() -> TaskControl { TaskControl(onStarted: {}) }

    @Test func requestsMadeBeforeTheRunnerListensReachItFirstAndInOrder() {
        let control = Self.control()
        let heard = LockedValue<[StopRequest]>([])
        control.request(.terminate)
        control.request(.forceKill)
        control.onStopRequest { stop in heard.withLock { $0.append(stop) } }
        #expect(heard.withLock { $0 } == [.terminate, .forceKill])
        control.request(.terminate)
        #expect(heard.withLock { $0 } == [.terminate, .forceKill, .terminate])
    }

    @Test func nothingReachesTheRunnerOnceTheRunIsOver() {
        let control = Self.control()
        let heard = LockedValue<[StopRequest]>([])
        control.onStopRequest { stop in heard.withLock { $0.append(stop) } }
        control.finish()
        control.request(.forceKill)
        #expect(heard.withLock { $0 }.isEmpty)
    }

    @Test func aRequestKeptWhenTheRunEndsIsDropped() {
        let control = Self.control()
        let heard = LockedValue<[StopRequest]>([])
        control.request(.terminate)
        control.finish()
        control.onStopRequest { stop in heard.withLock { $0.append(stop) } }
        #expect(heard.withLock { $0 }.isEmpty)
    }

    @Test func theStreamHasEveryRequestAndFinishesWithTheRun() async {
        let control = Self.control()
        control.request(.terminate)
        let requests = control.stopRequestStream()
        control.request(.forceKill)
        control.finish()
        control.request(.terminate)
        var received: [StopRequest] = []
        for await request in requests { received.append(request) }
        #expect(received == [.terminate, .forceKill])
    }

    @Test func aStreamAskedForAfterTheRunIsOverIsFinished() async {
        let control = Self.control()
        control.finish()
        var received: [StopRequest] = []
        for await request in control.stopRequestStream() { received.append(request) }
        #expect(received.isEmpty)
    }
}
