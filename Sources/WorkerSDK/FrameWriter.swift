import WorkerWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Writes frames to the executor from a thread of its own. Results that finish while a write is
/// in progress go out together in the next one, so a fast stream of small results costs few
/// system calls and few wake-ups of the executor, while a lone result is written at once.
final class FrameWriter: @unchecked Sendable {
    private var thread = pthread_t()
    private let descriptor: Int32
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeup = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `lock`.
    private var pending: [UInt8] = []
    private var closed = false

    init(descriptor: Int32) {
        self.descriptor = descriptor
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wakeup, nil)
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { context in
                let writer = Unmanaged<FrameWriter>.fromOpaque(context!).takeRetainedValue()
                writer.loop()
                return nil
            }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
    }

    deinit {
        pthread_cond_destroy(wakeup)
        pthread_mutex_destroy(lock)
        wakeup.deallocate()
        lock.deallocate()
    }

    func send(_ message: FromWorker) {
        let payload = message.encoded()
        pthread_mutex_lock(lock)
        Frame.append(payload, to: &pending)
        pthread_cond_signal(wakeup)
        pthread_mutex_unlock(lock)
    }

    /// Writes what is pending, then stops the thread.
    func finish() {
        pthread_mutex_lock(lock)
        closed = true
        pthread_cond_signal(wakeup)
        pthread_mutex_unlock(lock)
        pthread_join(thread, nil)
    }

    private func loop() {
        var broken = false
        while true {
            pthread_mutex_lock(lock)
            while pending.isEmpty && !closed { pthread_cond_wait(wakeup, lock) }
            var bytes: [UInt8] = []
            swap(&bytes, &pending)
            let done = closed
            pthread_mutex_unlock(lock)
            if !broken && !bytes.isEmpty { broken = !writeAll(bytes) }
            if done && bytes.isEmpty { return }
        }
    }

    /// False once the executor has gone (EPIPE): later results are dropped.
    private func writeAll(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let written = write(descriptor, raw.baseAddress! + offset, raw.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    return false
                }
                offset += written
            }
            return true
        }
    }
}
