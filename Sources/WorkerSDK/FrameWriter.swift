import WorkerWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Writes frames to the executor. A frame sent while no write is in progress is written at once
/// on the caller's thread (no thread hand-off on the round trip); frames sent during a write
/// gather and go out together from a thread of its own, so a fast stream of small results costs
/// few system calls and few wake-ups of the executor. That thread is started the first time
/// frames gather: a worker that never has two frames to send at once (a fine-mode worker, forked
/// for one closure) never pays for a thread.
final class FrameWriter: @unchecked Sendable {
    private var thread = pthread_t()
    private let descriptor: Int32
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeup = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `lock`.
    private var pending: [UInt8] = []
    private var writing = false
    private var closed = false
    /// The executor has gone (EPIPE): later frames are dropped.
    private var broken = false
    private var threadStarted = false

    init(descriptor: Int32) {
        self.descriptor = descriptor
        pthread_mutex_init(lock, nil)
        pthread_cond_init(wakeup, nil)
    }

    /// Starts the thread that writes gathered frames, once; call with `lock` held.
    private func startThreadIfNeeded() {
        guard !threadStarted else { return }
        let context = Unmanaged.passRetained(self).toOpaque()
        let rc = pthread_create(
            &thread, nil,
            { context in
                let writer = Unmanaged<FrameWriter>.fromOpaque(context!).takeRetainedValue()
                writer.loop()
                return nil
            }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        threadStarted = true
    }

    deinit {
        pthread_cond_destroy(wakeup)
        pthread_mutex_destroy(lock)
        wakeup.deallocate()
        lock.deallocate()
    }

    func send(_ message: FromWorker) {
        var frame: [UInt8] = []
        Frame.append(message.encoded(), to: &frame)
        pthread_mutex_lock(lock)
        guard !writing && pending.isEmpty && !broken else {
            // No wake-up needed: whoever is writing looks at `pending` when done, and pending
            // frames with nobody writing have had their wake-up already (below, or the thread's
            // own loop).
            if !broken { pending += frame }
            pthread_mutex_unlock(lock)
            return
        }
        writing = true
        pthread_mutex_unlock(lock)
        let ok = writeAll(frame)
        pthread_mutex_lock(lock)
        writing = false
        if !ok { broken = true }
        // The thread is woken only when it has something to do: frames that came during this
        // write, or `finish()` waiting for the write to end. A wake-up for nothing costs the
        // thread a trip to another core and back (most sends find nothing to hand over).
        if !pending.isEmpty { startThreadIfNeeded() }
        if !pending.isEmpty || closed { pthread_cond_broadcast(wakeup) }
        pthread_mutex_unlock(lock)
    }

    /// Writes what is pending, then stops the thread.
    func finish() {
        pthread_mutex_lock(lock)
        closed = true
        // Without a thread, a write in progress is waited for: if frames gathered meanwhile, it
        // starts the thread before it lets go.
        while writing && !threadStarted { pthread_cond_wait(wakeup, lock) }
        let started = threadStarted
        if started { pthread_cond_broadcast(wakeup) }
        pthread_mutex_unlock(lock)
        if started { pthread_join(thread, nil) }
    }

    private func loop() {
        pthread_mutex_lock(lock)
        while true {
            if broken { pending = [] }
            if !writing && !pending.isEmpty {
                var bytes: [UInt8] = []
                swap(&bytes, &pending)
                writing = true
                pthread_mutex_unlock(lock)
                let ok = writeAll(bytes)
                pthread_mutex_lock(lock)
                writing = false
                if !ok { broken = true }
            } else if closed && !writing && pending.isEmpty {
                pthread_mutex_unlock(lock)
                return
            } else {
                pthread_cond_wait(wakeup, lock)
            }
        }
    }

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
