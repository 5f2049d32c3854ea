import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// An flock(2) on a file: shared between processes, released by the kernel when the holder closes it
/// or dies, so a crashed executor never leaves a lock behind. Each instance has its own open file
/// description, so two instances in one process exclude each other as two processes would.
final class FileLock: @unchecked Sendable {
    private let fd: Int32
    let path: String

    init(path: String) throws(FileSystemFailure) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw FileSystemFailure("cannot open lock file", path) }
        self.path = path
    }

    deinit { close(fd) }

    /// Waits for the exclusive lock on a thread of its own.
    func lockExclusive() async -> Bool {
        let fd = fd
        return await BlockingThread.run {
            while flock(fd, LOCK_EX) != 0 {
                if errno != EINTR { return false }
            }
            return true
        }
    }

    func tryLock(shared: Bool) -> Bool { flock(fd, (shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0 }

    func unlock() { flock(fd, LOCK_UN) }

    /// Marks the file as used now (its mtime orders the cache's LRU eviction).
    func touch() { futimens(fd, nil) }
}
