import WorkerSDK
import WorkerWire

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A worker for demos and tests. Functions:
/// - `echo`: returns the payload.
/// - `sleep`: sleeps for payload milliseconds (decimal text); honours cancel.
/// - `hang`: sleeps for payload milliseconds ignoring cancel (blocks its thread); first writes its
///   pid (decimal text and a newline) to the FIFO named by the closure environment's
///   `DEMO_READY_FIFO`, if set.
/// - `garbage`: writes bytes that are not a frame to the executor, then sleeps for an hour.
/// - `fail`: throws with the payload as the message.
/// - `crash`: empty payload → SIGSEGV; a decimal payload → exits with that status.
/// - `pi`: Monte Carlo estimate of π from payload samples (decimal text); returns the text.
/// - `allocate`: allocates and touches payload MiB (decimal text), frees it, returns "allocated N MiB"
///   (past a memory cgroup's limit, the kernel's OOM killer stops the worker).
/// - `exceed`: like `allocate`, but throws if no memory limit stopped it.
/// - `wordcount`: payload text → "word count" lines, sorted by word.
/// - `progress`: payload "steps" or "steps,milliseconds": reports progress step/steps ("step k of
///   n") that many times, pausing the milliseconds (default 0) between steps; returns "done".
/// - `chatter`: writes payload (decimal) numbered lines "1" … "n" to stdout; returns "done".
/// - `badprogress`: sends a progress message whose fraction is 7 (a protocol error), then hangs.
/// - `process`: prints a line to stdout and returns "pid=… ppid=… sid=… origin=forked|spawned
///   oom=… probe=…": whether the process image came from a fork server (its start-up environment, in
///   /proc/self/environ, holds the fork-server variable), its `oom_score_adj` and the process
///   environment's `DEMO_PROBE`.
///
/// `DEMO_WORKER_MODE=garbage` writes bytes that are not a frame; `badversion` says hello with
/// protocol version 99; `silent` never says hello; `crash` writes why to stderr and exits with 3
/// before its hello (as a worker missing something it needs would); `noforks` ignores a request to
/// be a fork server;
/// `threaded` starts a thread before `run()` (so it must not become a fork server).
/// `DEMO_WORKER_CONCURRENCY` sets the width. `DEMO_STARTED_FIFO` names a FIFO the program writes a
/// byte to when it starts (if a reader has it open), so tests see when workers start.
@main
enum DemoWorker {
    static func main() {
        if let fifo = getenv("DEMO_STARTED_FIFO") {
            let fd = open(fifo, O_WRONLY | O_NONBLOCK)
            if fd >= 0 {
                writeRaw([UInt8(ascii: "s")], to: fd)
                close(fd)
            }
        }
        let mode = getenv("DEMO_WORKER_MODE").map { String(cString: $0) } ?? ""
        let concurrency = getenv("DEMO_WORKER_CONCURRENCY").flatMap { Int(String(cString: $0)) } ?? 1
        switch mode {
        case "garbage":
            writeRaw(Array("this is not a RecordIO frame\n".utf8), to: 4)
            waitForEOF()
            exit(0)
        case "badversion":
            var frame: [UInt8] = []
            let hello = WorkerHello(protocolVersion: 99, workerName: "demo-worker", functions: ["echo"], concurrency: 1)
            FromWorker.hello(hello).appendFrame(to: &frame)
            writeRaw(frame, to: 4)
            waitForEOF()
            exit(0)
        case "silent":
            waitForEOF()
            exit(0)
        case "crash":
            writeRaw(
                Array("demo-worker: starting\ndemo-worker: cannot start: no model at /models/demo\n\n".utf8), to: 2)
            exit(3)
        case "noforks":
            unsetenv(workerForkServerVariable)
        case "threaded":
            // A thread started before run(): the worker must refuse to be a fork server.
            var thread = pthread_t()
            pthread_create(&thread, nil, idleThread, nil)
        default:
            break
        }
        var worker = Worker(name: "demo-worker")
        worker.register("echo") { $0 }
        worker.register("progress") { payload in
            let fields = String(decoding: payload, as: UTF8.self).split(separator: ",")
            guard let steps = fields.first.flatMap({ Int($0) }), steps > 0 else {
                throw WorkerFailure("progress: expected \"steps\" or \"steps,milliseconds\"")
            }
            let pause = fields.count > 1 ? Int(fields[1]) ?? 0 : 0
            for step in 1...steps {
                if pause > 0 { try await Task.sleep(for: .milliseconds(pause)) }
                WorkerContext.reportProgress(Double(step) / Double(steps), message: "step \(step) of \(steps)")
            }
            return Array("done".utf8)
        }
        worker.register("chatter") { payload in
            let count = try number(payload)
            var chunk: [UInt8] = []
            for line in 1...max(1, count) {
                chunk += Array("\(line)\n".utf8)
                if chunk.count >= 8192 || line == count {
                    writeRaw(chunk, to: 1)
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            return Array("done".utf8)
        }
        worker.register("badprogress") { _ in
            var frame: [UInt8] = []
            FromWorker.progress(RunProgress(id: 1, fraction: 7)).appendFrame(to: &frame)
            writeRaw(frame, to: 4)
            try await Task.sleep(for: .seconds(3600))
            return []
        }
        worker.register("sleep") { payload in
            try await Task.sleep(for: .milliseconds(try number(payload)))
            return Array("slept".utf8)
        }
        worker.register("hang") { payload in
            let milliseconds = try number(payload)
            // Tests learn that the closure runs (and so ignores a cancel) through this FIFO.
            signalRunning()
            var request = timespec(tv_sec: milliseconds / 1000, tv_nsec: milliseconds % 1000 * 1_000_000)
            var remaining = timespec()
            while nanosleep(&request, &remaining) != 0 && errno == EINTR { request = remaining }
            return Array("hung".utf8)
        }
        // Works without ever suspending, looking for its cancel between steps of 1 ms: the cancel
        // must reach a closure that has not given up its thread.
        worker.register("busy") { payload in
            let steps = try number(payload)
            signalRunning()
            for _ in 0..<steps {
                try Task.checkCancellation()
                var step = timespec(tv_sec: 0, tv_nsec: 1_000_000)
                nanosleep(&step, nil)
            }
            return Array("done".utf8)
        }
        worker.register("garbage") { _ in
            writeRaw(Array("this is not a RecordIO frame\n".utf8), to: 4)
            try await Task.sleep(for: .seconds(3600))
            return []
        }
        worker.register("fail") { payload in throw WorkerFailure(String(decoding: payload, as: UTF8.self)) }
        worker.register("crash") { payload in
            if payload.isEmpty {
                // The Swift runtime's crash handler would catch it; die the plain way.
                signal(SIGSEGV, SIG_DFL)
                raise(SIGSEGV)
            }
            exit(Int32(try number(payload)))
        }
        worker.register("pi") { payload in Array(String(estimatePi(samples: try number(payload))).utf8) }
        worker.register("allocate") { payload in
            // Touches every page, so the memory is really used (and counted by a memory cgroup).
            let megabytes = try number(payload)
            var blocks: [UnsafeMutableRawPointer] = []
            for _ in 0..<megabytes {
                guard let block = malloc(1 << 20) else { throw WorkerFailure("out of memory") }
                memset(block, 0x5a, 1 << 20)
                blocks.append(block)
            }
            for block in blocks { free(block) }
            return Array("allocated \(megabytes) MiB".utf8)
        }
        worker.register("exceed") { payload in
            // Meant to be stopped by a memory limit; where none stops it, it fails all the same.
            let megabytes = try number(payload)
            var blocks: [UnsafeMutableRawPointer] = []
            for _ in 0..<megabytes {
                guard let block = malloc(1 << 20) else { break }
                memset(block, 0x5a, 1 << 20)
                blocks.append(block)
            }
            for block in blocks { free(block) }
            throw WorkerFailure("allocated \(megabytes) MiB and no memory limit stopped it (no cgroups here?)")
        }
        worker.register("wordcount") { payload in Array(wordCount(String(decoding: payload, as: UTF8.self)).utf8) }
        worker.register("process") { _ in
            writeRaw(Array("process \(getpid()) says hello\n".utf8), to: 1)
            let origin = startupEnvironment().contains(workerForkServerVariable + "=") ? "forked" : "spawned"
            let probe = getenv("DEMO_PROBE").map { String(cString: $0) } ?? "-"
            let oom =
                Self.readSmallFile("/proc/self/oom_score_adj").split(separator: "\n").first.map(String.init) ?? "?"
            return Array(
                "pid=\(getpid()) ppid=\(getppid()) sid=\(getsid(0)) origin=\(origin) oom=\(oom) probe=\(probe)".utf8)
        }
        worker.run(concurrency: concurrency)
    }

    static func number(_ payload: [UInt8]) throws -> Int {
        guard let value = Int(String(decoding: payload, as: UTF8.self)), value >= 0 else {
            throw WorkerFailure("payload '\(String(decoding: payload.prefix(40), as: UTF8.self))' is not a count")
        }
        return value
    }

    static func estimatePi(samples: Int) -> Double {
        guard samples > 0 else { return 0 }
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var inside = 0
        for _ in 0..<samples {
            // xorshift64*: fast and good enough for a demo estimate.
            state ^= state >> 12
            state ^= state << 25
            state ^= state >> 27
            let bits = state &* 0x2545_F491_4F6C_DD1D
            let x = Double(bits >> 40) / Double(1 << 24)
            let y = Double(bits & 0xFF_FFFF) / Double(1 << 24)
            if x * x + y * y <= 1 { inside += 1 }
        }
        return 4 * Double(inside) / Double(samples)
    }

    static func wordCount(_ text: String) -> String {
        var counts: [Substring: Int] = [:]
        for word in text.split(whereSeparator: { $0.isWhitespace }) { counts[word, default: 0] += 1 }
        return counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)\n" }.joined()
    }

    /// The environment the program was started with (later setenv calls do not show here).
    static func startupEnvironment() -> String {
        readSmallFile("/proc/self/environ").split(separator: "\0", omittingEmptySubsequences: false)
            .joined(separator: "\n")
    }

    /// A small file's text (a /proc file, which reports no size); "" when it cannot be read.
    static func readSmallFile(_ path: String) -> String {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else { return "" }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            bytes += chunk[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Tells a test that the closure is running: the pid into the FIFO `DEMO_READY_FIFO` names.
    static func signalRunning() {
        guard let fifo = WorkerContext.environment["DEMO_READY_FIFO"] else { return }
        let fd = open(fifo, O_WRONLY)
        guard fd >= 0 else { return }
        writeRaw(Array("\(getpid())\n".utf8), to: fd)
        close(fd)
    }

    static func writeRaw(_ bytes: [UInt8], to descriptor: Int32) {
        bytes.withUnsafeBytes { _ = write(descriptor, $0.baseAddress, $0.count) }
    }

    static func waitForEOF() {
        var byte: UInt8 = 0
        while read(3, &byte, 1) > 0 {}
    }
}

/// A thread that does nothing (mode `threaded`). At file scope, so it is not isolated to the main
/// actor as a closure in `main` would be.
private func idleThread(_: UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer? {
    while true { pause() }
}
