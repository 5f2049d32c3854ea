import NIOCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A bounded byte queue from an async producer (the download) to a blocking consumer thread
/// (libarchive). The producer suspends while more than `capacity` bytes wait, so a slow extraction
/// slows the download instead of filling memory.
final class ByteChannel: @unchecked Sendable {
    enum Item {
        case chunk(ByteBuffer)
        case end
        case failed(any Error)
    }

    /// What became of a chunk the producer sent.
    enum SendResult {
        case accepted
        /// The consumer finished successfully and needs no more bytes (tar trailer padding).
        case notNeeded
        /// The consumer failed; stop producing.
        case consumerFailed
    }

    private let capacity: Int
    // pthread primitives must not move in memory: they live on the heap.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    private var chunks = CircularBuffer<ByteBuffer>()
    private var buffered = 0
    private var ending: Item?
    private var consumerState: SendResult = .accepted
    private var waitingProducer: CheckedContinuation<Void, Never>?

    init(capacity: Int) {
        self.capacity = capacity
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
        condition.deallocate()
    }

    /// Queues `chunk`, suspending while the queue is full.
    func send(_ chunk: ByteBuffer) async -> SendResult {
        pthread_mutex_lock(mutex)
        guard consumerState == .accepted else {
            let state = consumerState
            pthread_mutex_unlock(mutex)
            return state
        }
        chunks.append(chunk)
        buffered += chunk.readableBytes
        pthread_cond_signal(condition)
        let full = buffered > capacity
        pthread_mutex_unlock(mutex)
        if full {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                pthread_mutex_lock(mutex)
                if buffered > capacity && consumerState == .accepted {
                    waitingProducer = continuation
                    pthread_mutex_unlock(mutex)
                } else {
                    pthread_mutex_unlock(mutex)
                    continuation.resume()
                }
            }
        }
        return .accepted
    }

    /// Ends the stream: `nil` for a complete payload, an error for a failed download.
    func finish(_ error: (any Error)?) {
        pthread_mutex_lock(mutex)
        if ending == nil { ending = error.map { .failed($0) } ?? .end }
        pthread_cond_signal(condition)
        pthread_mutex_unlock(mutex)
    }

    /// The next chunk, blocking the consumer thread until there is one.
    func next() -> Item {
        pthread_mutex_lock(mutex)
        while chunks.isEmpty && ending == nil { pthread_cond_wait(condition, mutex) }
        let item: Item
        var wake: CheckedContinuation<Void, Never>?
        if let chunk = chunks.popFirst() {
            buffered -= chunk.readableBytes
            item = .chunk(chunk)
            if buffered <= capacity / 2 {
                wake = waitingProducer
                waitingProducer = nil
            }
        } else {
            item = ending!
        }
        pthread_mutex_unlock(mutex)
        wake?.resume()
        return item
    }

    /// The consumer is done: later sends are dropped and a waiting producer is released.
    func closeConsumer(failed: Bool) {
        pthread_mutex_lock(mutex)
        consumerState = failed ? .consumerFailed : .notNeeded
        chunks.removeAll()
        buffered = 0
        let wake = waitingProducer
        waitingProducer = nil
        pthread_mutex_unlock(mutex)
        wake?.resume()
    }
}
