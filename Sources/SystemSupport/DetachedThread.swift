import CProcessSpawn

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A thread of our own that nobody joins: the one place this package starts one (the reaper's and
/// the log drain's loops, ``BlockingThread``, ``SerialThread``).
///
/// It goes by `name` (`ps -L`, `top -H`) and runs at the process's nice value: a thread inherits
/// both from the thread that starts it, and in the executor that is often a task thread
/// (`swift-tasks`, nice −2), whose priority is for the executor's own bookkeeping, not for the
/// blocking work or the loops started from it.
public enum DetachedThread {
    /// Starts `body` on a new detached thread named `name` (15 bytes are kept); false (and `body`
    /// not run) when none could be had.
    public static func start(named name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(
            Body {
                cps_name_this_thread(name)
                _ = cps_take_process_nice()
                body()
            })
        var attributes = pthread_attr_t()
        pthread_attr_init(&attributes)
        pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
        defer { pthread_attr_destroy(&attributes) }
        var thread = pthread_t()
        let rc = pthread_create(
            &thread, &attributes,
            { context in
                Unmanaged<Body>.fromOpaque(context!).takeRetainedValue().run()
                return nil
            }, box.toOpaque())
        if rc != 0 { box.release() }
        return rc == 0
    }

    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
}
