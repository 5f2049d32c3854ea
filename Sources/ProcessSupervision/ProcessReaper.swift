import CProcessSpawn
import Synchronization

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reaps children through their pidfds on one dedicated thread (epoll), so that waiting costs
/// no thread per child and never steals the children of other code in the same process
/// (a `waitpid(-1)` reaper would).
public final class ProcessReaper: Sendable {
    /// The process-wide reaper. It owns one thread for the life of the process.
    public static let shared = ProcessReaper()

    private let epoll: Int32
    private let waiters = Mutex<[Int32: CheckedContinuation<Termination, Never>]>([:])

    private init() {
        epoll = cps_epoll_create()
        precondition(epoll >= 0, "epoll_create1 failed: errno \(errno)")
        var thread = pthread_t()
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { context in
                let reaper = Unmanaged<ProcessReaper>.fromOpaque(context!).takeUnretainedValue()
                reaper.loop()
                return nil
            }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        pthread_detach(thread)
    }

    func wait(pidfd: Int32) async -> Termination {
        await withCheckedContinuation { continuation in
            waiters.withLock { $0[pidfd] = continuation }
            if cps_epoll_add_readable(epoll, pidfd) != 0 {
                // Not pollable: fall back to a blocking wait on this thread.
                let continuation = waiters.withLock { $0.removeValue(forKey: pidfd) }
                continuation?.resume(returning: Self.reap(pidfd, blocking: true) ?? .exited(-1))
            }
        }
    }

    private func loop() {
        var ready = [Int32](repeating: -1, count: 64)
        while true {
            let count = cps_epoll_wait(epoll, &ready, Int32(ready.count))
            precondition(count >= 0, "epoll_wait failed: errno \(-count)")
            for index in 0..<Int(count) {
                let fd = ready[index]
                guard let termination = Self.reap(fd, blocking: false) else { continue }
                _ = cps_epoll_remove(epoll, fd)
                let continuation = waiters.withLock { $0.removeValue(forKey: fd) }
                continuation?.resume(returning: termination)
            }
        }
    }

    private static func reap(_ pidfd: Int32, blocking: Bool) -> Termination? {
        var exited: Int32 = 0
        var status: Int32 = 0
        let rc = cps_pidfd_wait(pidfd, &exited, &status, blocking ? 0 : 1)
        if rc == EAGAIN { return nil }
        guard rc == 0 else { return .exited(-1) }
        return exited == 1 ? .exited(status) : .signaled(status)
    }
}
