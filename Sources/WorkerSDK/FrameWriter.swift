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
///
/// A frame sent with `mayWait` (a mini-task result with another run queued behind it) is held for
/// at most `holdLimit` so that it goes out with the frames that follow: a write per result was a
/// third of a worker's CPU on mini-tasks, and each woke the executor's event loop. The next frame
/// sent without `mayWait` takes every held one with it; if none comes in time (the next run is a
/// long one), the writer's thread writes them at the limit.
final class FrameWriter: @unchecked Sendable {
    /// How long a frame sent with `mayWait` may be held.
    static let defaultHoldLimit: Duration = .microseconds(200)

    private var thread = pthread_t()
    private let descriptor: Int32
    private let holdNanoseconds: UInt64
    private let lock = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let wakeup = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    // Guarded by `lock`.
    private var pending: [UInt8] = []
    /// When the oldest held frame must be out (CLOCK_MONOTONIC nanoseconds); nil when nothing in
    /// `pending` is held: what is pending then goes out as soon as the write in progress ends.
    private var holdDeadline: UInt64?
    private var writing = false
    private var closed = false
    /// The executor has gone (EPIPE): later frames are dropped.
    private var broken = false
    private var threadStarted = false

    init(descriptor: Int32, holdLimit: Duration = FrameWriter.defaultHoldLimit) {
        self.descriptor = descriptor
        let (seconds, attoseconds) = holdLimit.components
        holdNanoseconds = UInt64(max(0, seconds)) * 1_000_000_000 + UInt64(max(0, attoseconds) / 1_000_000_000)
        pthread_mutex_init(lock, nil)
        var attributes = pthread_condattr_t()
        pthread_condattr_init(&attributes)
        pthread_condattr_setclock(&attributes, CLOCK_MONOTONIC)
        pthread_cond_init(wakeup, &attributes)
        pthread_condattr_destroy(&attributes)
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

    /// Sends `message`; with `mayWait`, it may be held (at most the hold limit) to go out with
    /// the frames sent after it. Frames go out in the order they were sent.
    func send(_ message: FromWorker, mayWait: Bool = false) {
        var frame: [UInt8] = []
        frame.reserveCapacity(message.frameSize)
        message.appendFrame(to: &frame)
        pthread_mutex_lock(lock)
        if broken {
            pthread_mutex_unlock(lock)
            return
        }
        if mayWait && !closed {
            // Held only behind nothing: frames already waiting (held, or due once the write in
            // progress ends) keep their time, and this one goes with them.
            let first = pending.isEmpty && !writing
            pending += frame
            if first {
                // The first held frame: the thread must be there to write it at the limit. One
                // wake-up for a run of held frames, not one each.
                holdDeadline = Self.now() &+ holdNanoseconds
                startThreadIfNeeded()
                pthread_cond_broadcast(wakeup)
            }
            pthread_mutex_unlock(lock)
            return
        }
        guard !writing else {
            // Whoever is writing looks at `pending` when done, and writes it then: it is no longer
            // held.
            pending += frame
            holdDeadline = nil
            pthread_mutex_unlock(lock)
            return
        }
        // Held frames go first, with this one, in one write.
        var bytes: [UInt8] = []
        swap(&bytes, &pending)
        bytes += frame
        holdDeadline = nil
        writing = true
        pthread_mutex_unlock(lock)
        let ok = writeAll(bytes)
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

    /// Writes what is pending, held or not, then stops the thread.
    func finish() {
        pthread_mutex_lock(lock)
        closed = true
        holdDeadline = nil
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
            if broken {
                pending = []
                holdDeadline = nil
            }
            if let deadline = holdDeadline, !writing, !closed, deadline > Self.now() {
                var time = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
                pthread_cond_timedwait(wakeup, lock, &time)
            } else if !writing && !pending.isEmpty {
                var bytes: [UInt8] = []
                swap(&bytes, &pending)
                holdDeadline = nil
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

    private static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
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
