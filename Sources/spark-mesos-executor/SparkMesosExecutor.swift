import Dispatch
import Isolation
import ProcessSupervision
import Synchronization
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

@main
enum SparkMesosExecutor {
    static let version = "0.1.0"

    static func main() {
        let invocation: Invocation
        do {
            invocation = try CommandLineInterface.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            ProcessEnvironment.printError("Error: \(error.message)\nUsage: \(error.usage)")
            exit(64)
        }
        switch invocation {
        case .run(let options):
            // Before any other thread starts: threads inherit the mask (see watchTermination).
            TerminationSignals.block()
            // So that a burst's heap goes back to the system once idle, whichever thread used it.
            ResidentMemory.fixHeapThresholds()
            // Before any other thread starts: the table then grows without an RCU grace period.
            DescriptorTable.reserve(below: CgroupIsolation.keptDescriptorsEnd)
            // Before any task exists. No job of the executor blocks its thread until another job
            // has run (blocking work has threads of its own: BlockingThread, SerialThread), so a
            // job a task thread enqueues is left to that thread rather than waking the other core
            // (Tests/Benchmarks/HISTORY.md: coarse mode). Nice −2, as libdispatch ran the
            // executor's tasks (its user-initiated threads): ahead of the tasks it supervises.
            TaskThreads.installPool(wakesForItsOwnJobs: false, nice: -2)
            exit(waitForExitCode { await Run(options: options).run() })
        case .harness(let arguments):
            exit(HarnessLauncher.run(arguments))
        case .cacheList(let directory):
            exit(Cache(directory: directory).list())
        case .cachePrune(let directory, let maxBytes):
            exit(Cache(directory: directory).prune(maxBytes: maxBytes))
        case .cacheClear(let directory):
            exit(Cache(directory: directory).clear())
        case .help(let text):
            print(text, terminator: "")
            exit(0)
        case .version:
            print(version)
            exit(0)
        }
    }

    /// Runs `body` (on the main thread until it first suspends, then on the task threads)
    /// while the main thread waits for its exit code. An `async` main would end the main thread with
    /// `pthread_exit` once the main task is started, and that forced unwinding of its stack reads
    /// about 0.9 MB of the program's unwind tables into the executor's RSS for good
    /// (Tests/Benchmarks/HISTORY.md); nothing in the executor uses the main queue or the main actor.
    private static func waitForExitCode(_ body: @escaping @Sendable () async -> Int32) -> Int32 {
        let done = DispatchSemaphore(value: 0)
        let code = Atomic<Int32>(0)
        Task.immediate {
            code.store(await body(), ordering: .releasing)
            done.signal()
        }
        done.wait()
        return code.load(ordering: .acquiring)
    }
}
