import NIOCore
import NIOPosix
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// NIO's shared event-loop group, which every connection of the executor runs on: the agent's, the
/// fetcher's and the workers' pipes.
public enum EventLoops {
    /// Sizes the group to `threads` loops (unless `NIO_SINGLETON_GROUP_LOOP_COUNT` says otherwise)
    /// and starts it on a thread of its own, so that its loops come up while the rest of start-up
    /// runs. Call it once, first thing, before anything uses NIO.
    ///
    /// NIO's default is a loop per core, started one after another before the first connection can
    /// be made: on a 64-core agent, 64 threads in every executor before it can subscribe.
    ///
    /// The sizing is done by that thread too: NIO's first look at its loop count makes the Swift
    /// runtime instantiate the atomic that holds it (its type's metadata and conformances, a scan of
    /// the binary's conformance records), about a twentieth of what the main thread did before its
    /// SUBSCRIBE (Tests/Benchmarks/HISTORY.md).
    public static func startEarly(threads: Int) {
        // Read by `sized` on the thread started below (its start orders this write before) or,
        // should a connection come first, on this one.
        requestedLoops = threads
        // Without a thread to start it on, the group starts where it is first used, as it would anyway.
        _ = DetachedThread.start(named: "nio-start") { _ = group }
    }

    /// The group, sized as ``startEarly(threads:)`` asked before anything used it. The agent's
    /// connections take it here, so that the first one, made on the main thread early on, waits for
    /// the sizing (or does it) instead of starting NIO's default group.
    static var group: MultiThreadedEventLoopGroup {
        _ = sized
        return MultiThreadedEventLoopGroup.singleton
    }

    /// The loop count ``startEarly(threads:)`` asked for; 0 leaves NIO's own choice.
    nonisolated(unsafe) private static var requestedLoops = 0

    /// Done once, by whichever thread comes first; the others wait for it.
    private static let sized: Void = {
        if requestedLoops > 0, getenv("NIO_SINGLETON_GROUP_LOOP_COUNT") == nil {
            NIOSingletons.groupLoopCountSuggestion = requestedLoops
        }
    }()
}
