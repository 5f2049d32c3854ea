import CProcessSpawn
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Moves what children write to their stdout/stderr pipes into size-bounded files
/// (``RotatingLogFile``), for every stream of the process on one dedicated thread (epoll), so
/// output costs no thread per child and rotation (a few renames) never waits on anything but
/// the page cache. A stream ends when every holder of its pipe's write end is gone (EOF): then
/// everything written has landed and the file is closed.
///
/// Memory: one read buffer for the thread, plus what the kernel keeps in each pipe (64 KiB).
public final class LogDrain: Sendable {
    /// The process-wide drain. It owns one thread for the life of the process.
    public static let shared = LogDrain()

    /// Bytes moved per read; a ready stream gets up to `readsPerTurn` reads before the next one's turn.
    static let bufferSize = 128 * 1024
    static let readsPerTurn = 8

    final class Stream: Sendable {
        struct State: ~Copyable {
            var file: RotatingLogFile
            /// The pipe's read end (non-blocking); -1 once the stream ended.
            var input: Int32
        }
        let state: LockedValue<State>
        init(file: consuming RotatingLogFile, input: Int32) { state = LockedValue(State(file: file, input: input)) }
    }

    private let epoll: Int32
    private let streams = LockedValue<[Int32: Stream]>([:])

    private init() {
        epoll = cps_epoll_create()
        precondition(epoll >= 0, "epoll_create1 failed: errno \(errno)")
        let started = DetachedThread.start(named: "log-drain") { [self] in loop() }
        precondition(started, "cannot start the log drain's thread")
    }

    /// A pipe whose write end goes to a child and whose read end is drained into `path`
    /// (rotated by `rotation`). Returns the write end (close-on-exec), which the caller closes
    /// once the child has its copy, and the stream, for ``flush(_:)``.
    func open(path: String, rotation: LogRotation) throws(ProcessError) -> (writeEnd: Int32, stream: Stream) {
        let file = try RotatingLogFile(path: path, rotation: rotation)
        var ends: [Int32] = [-1, -1]
        // Close-on-exec from the start; only our read end is non-blocking (the flag is the open
        // file's, and the child's write end must block), and a pipe's read end has no other flag.
        let piped = makeCloseOnExecPipe(&ends)
        guard piped == 0 else { throw .systemCall("pipe", errno: piped) }
        _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
        let stream = Stream(file: file, input: ends[0])
        streams.withLock { $0[ends[0]] = stream }
        let rc = cps_epoll_add_readable(epoll, ends[0])
        if rc != 0 {
            streams.withLock { _ = $0.removeValue(forKey: ends[0]) }
            stream.state.withLock { state in
                close(state.input)
                state.input = -1
            }
            close(ends[1])
            throw .systemCall("epoll_ctl", errno: rc)
        }
        return (ends[1], stream)
    }

    /// Everything every stream's pipe holds now, to the files (executor shutdown).
    public func flushAll() {
        let all = streams.withLock { Array($0.values) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        for stream in all { _ = Self.drain(stream, buffer: buffer, reads: 1 << 20 / Self.bufferSize + 1) }
    }

    /// Writes what the pipes of `chosen` hold right now to their files, on the caller's thread:
    /// once the writers are gone (a task's processes have exited), everything they wrote has
    /// landed when this returns. A writer still writing does not hold it up: at most about a MiB
    /// more is read.
    func flush(_ chosen: [Stream]) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        defer { buffer.deallocate() }
        for stream in chosen { _ = Self.drain(stream, buffer: buffer, reads: 1 << 20 / Self.bufferSize + 1) }
    }

    /// How many streams are open (for tests and benchmarks).
    public var openStreams: Int { streams.withLock { $0.count } }

    private func loop() {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: Self.bufferSize, alignment: 16)
        var ready = [Int32](repeating: -1, count: 64)
        while true {
            let count = cps_epoll_wait(epoll, &ready, Int32(ready.count), -1)
            precondition(count >= 0, "epoll_wait failed: errno \(-count)")
            for index in 0..<Int(count) {
                let fd = ready[index]
                guard let stream = streams.withLock({ $0[fd] }) else { continue }
                if Self.drain(stream, buffer: buffer, reads: Self.readsPerTurn) == .ended {
                    finish(stream)
                }
            }
        }
    }

    private enum Progress { case open, ended }

    /// Reads up to `reads` times (until the pipe is empty) into the file; `.ended` at EOF (seen
    /// at the latest by the next read after the writers left: epoll reports the hang-up).
    private static func drain(_ stream: Stream, buffer: UnsafeMutableRawBufferPointer, reads: Int) -> Progress {
        stream.state.withLock { state in
            guard state.input >= 0 else { return .ended }
            for _ in 0..<reads {
                let count = read(state.input, buffer.baseAddress, buffer.count)
                if count > 0 {
                    state.file.append(UnsafeRawBufferPointer(rebasing: buffer[..<count]))
                    // A pipe read returns all there is up to the size asked: a short one emptied
                    // it, and asking again would only cost a read that says EAGAIN.
                    if count < buffer.count { return .open }
                } else if count == 0 {
                    return .ended
                } else if errno == EINTR {
                    continue
                } else if errno == EAGAIN || errno == EWOULDBLOCK {
                    return .open
                } else {
                    return .ended
                }
            }
            return .open
        }
    }

    /// EOF: the stream leaves the epoll set and the registry; its pipe and file are closed.
    private func finish(_ stream: Stream) {
        stream.state.withLock { state in
            guard state.input >= 0 else { return }
            _ = cps_epoll_remove(epoll, state.input)
            streams.withLock { _ = $0.removeValue(forKey: state.input) }
            close(state.input)
            state.input = -1
            state.file.close()
        }
    }
}
