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
    public static func startEarly(threads: Int) {
        if getenv("NIO_SINGLETON_GROUP_LOOP_COUNT") == nil {
            NIOSingletons.groupLoopCountSuggestion = threads
        }
        // Without a thread to start it on, the group starts where it is first used, as it would anyway.
        _ = DetachedThread.start { _ = MultiThreadedEventLoopGroup.singleton }
    }
}
