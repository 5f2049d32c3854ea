#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Runs blocking work (libarchive's pull-style reads, flock, waitpid, a handshake with a child) on a
/// thread of its own, so the cooperative pool is never blocked. The caller awaits the result: the
/// thread is scoped to the call.
public enum BlockingThread {
    public static func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<T, Never>) in
            let box = Unmanaged.passRetained(Job { continuation.resume(returning: body()) })
            var attributes = pthread_attr_t()
            pthread_attr_init(&attributes)
            pthread_attr_setdetachstate(&attributes, Int32(PTHREAD_CREATE_DETACHED))
            var thread = pthread_t()
            let rc = pthread_create(
                &thread, &attributes,
                { context in
                    let job = Unmanaged<Job>.fromOpaque(context!).takeRetainedValue()
                    job.body()
                    return nil
                }, box.toOpaque())
            pthread_attr_destroy(&attributes)
            if rc != 0 {
                // No thread to be had: run inline rather than fail.
                box.takeRetainedValue().body()
            }
        }
    }

    private final class Job: @unchecked Sendable {
        let body: () -> Void
        init(_ body: @escaping () -> Void) { self.body = body }
    }
}
