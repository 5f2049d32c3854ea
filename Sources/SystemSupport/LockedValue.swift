public import Synchronization

/// A value that one thread at a time may use: a `Synchronization.Mutex` that ThreadSanitizer can
/// see. Every lock of this package is one.
///
/// TSan cannot see a plain `Mutex` hand its value from one thread to the next: when the lock is
/// contended, it is given up and taken in the standard library's futex calls, which are not built
/// with TSan, so TSan reports the guarded accesses as races. A build that defines `SANITIZE_THREAD`
/// (`make tsan` does) tells TSan about those edges itself: it acquires the value's address after
/// taking the lock and releases it before giving the lock up. Any other build is exactly a `Mutex`.
public struct LockedValue<Value: ~Copyable>: ~Copyable {
    @usableFromInline let mutex: Mutex<Value>

    /// A lock that guards `initialValue`.
    @inlinable
    public init(_ initialValue: consuming sending Value) {
        mutex = Mutex(initialValue)
    }

    /// Runs `body` with the value while holding the lock, and returns what it returns.
    @inlinable
    public borrowing func withLock<Result: ~Copyable, Failure: Error>(
        _ body: (inout sending Value) throws(Failure) -> sending Result
    ) throws(Failure) -> sending Result {
        #if SANITIZE_THREAD
            // The mutex cannot be copied or moved while borrowed, so this is its one address; taking
            // it reads nothing that the lock guards (touching `value` before the acquire would).
            let address = withUnsafePointer(to: mutex) { UnsafeRawPointer($0) }
        #endif
        return try mutex.withLock { (value: inout sending Value) throws(Failure) -> sending Result in
            #if SANITIZE_THREAD
                tsanAcquire(address)
                defer { tsanRelease(address) }
            #endif
            return try body(&value)
        }
    }
}

extension LockedValue: Sendable where Value: ~Copyable {}

/// ThreadSanitizer's view of a hand-off it cannot see: what the calling thread did so far happens
/// before whatever a thread does after a later ``sanitizerHappensAfter(_:)`` of the same object.
/// Nothing, in a build that does not define `SANITIZE_THREAD`.
///
/// Swift's runtime is not built with TSan and tells it of a continuation's hand-off only when the
/// resumed task is enqueued: a continuation resumed before its task reached `await` lets the task
/// go on at once (`swift_continuation_await`'s fast path), with no edge TSan sees, so what the
/// resuming thread wrote is reported as a race when the task reads it.
@inlinable
public func sanitizerHappensBefore(_ object: AnyObject) {
    #if SANITIZE_THREAD
        tsanRelease(UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque()))
    #endif
}

/// See ``sanitizerHappensBefore(_:)``.
@inlinable
public func sanitizerHappensAfter(_ object: AnyObject) {
    #if SANITIZE_THREAD
        tsanAcquire(UnsafeRawPointer(Unmanaged.passUnretained(object).toOpaque()))
    #endif
}

#if SANITIZE_THREAD
    /// ThreadSanitizer's runtime: everything the calling thread does after this happens after
    /// whatever threads did before their `tsanRelease(address)` (`void __tsan_acquire(void *)`).
    @usableFromInline @_silgen_name("__tsan_acquire")
    func tsanAcquire(_ address: UnsafeRawPointer)

    /// ThreadSanitizer's runtime: what the calling thread did so far happens before what threads do
    /// after a later `tsanAcquire(address)` (`void __tsan_release(void *)`).
    @usableFromInline @_silgen_name("__tsan_release")
    func tsanRelease(_ address: UnsafeRawPointer)
#endif
