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
            let job: @Sendable () -> Void = { continuation.resume(returning: body()) }
            // No thread to be had: run inline rather than fail.
            if !DetachedThread.start(named: "blocking", job) { job() }
        }
    }
}
