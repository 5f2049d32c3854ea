import Synchronization
import WorkerWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Reads the executor's messages on a thread of its own (a blocking read must not hold one of
/// the few cooperative threads): a new one (``startThread()``), or one that has nothing else to
/// do (``readOnThisThread()``). Runs go to the serve loop in batches, one per read; cancels are
/// applied at once, so a busy serve loop still honours them.
final class PipeReader: @unchecked Sendable {
    private var thread: pthread_t?
    private let descriptor: Int32
    private let registry: RunRegistry
    private let runs: AsyncStream<[RunRequest]>.Continuation
    /// Why reading stopped, when it failed; set before the stream of runs is finished.
    private let failure = Mutex<String?>(nil)

    init(descriptor: Int32, registry: RunRegistry, runs: AsyncStream<[RunRequest]>.Continuation) {
        self.descriptor = descriptor
        self.registry = registry
        self.runs = runs
    }

    /// Reads on a new thread, until the pipe closes.
    func startThread() {
        let context = Unmanaged.passRetained(self).toOpaque()
        var created = pthread_t()
        let rc = pthread_create(
            &created, nil,
            { context in
                let reader = Unmanaged<PipeReader>.fromOpaque(context!).takeRetainedValue()
                reader.loop()
                return nil
            }, context)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = created
    }

    /// Reads on the calling thread, until the pipe closes.
    func readOnThisThread() {
        loop()
    }

    /// Waits for the reader's thread to end, if it has one (the pipe closed: call it once the
    /// stream of runs ended); returns why reading failed, if it did.
    func join() -> String? {
        if let thread { pthread_join(thread, nil) }
        return failure.withLock { $0 }
    }

    private func loop() {
        var decoder = FrameDecoder()
        // Not zeroed: a forked worker reads a few hundred bytes in its life, and zeroing 64 KiB
        // would fault in 16 fresh pages of its memory for nothing.
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 * 1024, alignment: 16)
        defer {
            chunk.deallocate()
            registry.cancelAll()
            runs.finish()
        }
        while true {
            let count = read(descriptor, chunk.baseAddress, chunk.count)
            if count < 0 && errno == EINTR { continue }
            if count < 0 {
                let code = errno
                failure.withLock { $0 = "reading the executor's pipe failed: errno \(code)" }
                return
            }
            if count == 0 {
                if decoder.pendingByteCount > 0 {
                    failure.withLock { $0 = "the executor's pipe ended inside a message" }
                }
                return
            }
            decoder.feed(UnsafeRawBufferPointer(rebasing: chunk[0..<count]))
            var batch: [RunRequest] = []
            do {
                while let frame = try decoder.next() {
                    switch try ToWorker(decoding: frame) {
                    case .run(let run): batch.append(run)
                    case .cancel(let id):
                        if !batch.isEmpty {
                            runs.yield(batch)
                            batch = []
                        }
                        registry.cancel(id)
                    }
                }
            } catch {
                failure.withLock { $0 = "\(error)" }
                if !batch.isEmpty { runs.yield(batch) }
                return
            }
            if !batch.isEmpty { runs.yield(batch) }
        }
    }
}
