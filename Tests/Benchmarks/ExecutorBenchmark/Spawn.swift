import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Starts `argv` with posix_spawn, every signal at its default and none blocked: this process
/// ignores SIGPIPE (NIO does), an ignored signal survives exec, and `yes | head` in a child would
/// then print "Broken pipe" for every run instead of ending quietly as it does from a shell.
func spawn(
    _ argv: [String], environment: [String: String]? = nil, directory: String? = nil, stdout: Int32? = nil,
    descriptors: [(source: Int32, target: Int32)] = []
) throws -> pid_t {
    var actions = posix_spawn_file_actions_t()
    posix_spawn_file_actions_init(&actions)
    defer { posix_spawn_file_actions_destroy(&actions) }
    if let directory {
        guard let addChdir = addChdir else { throw BenchmarkError("posix_spawn cannot change directory here") }
        _ = addChdir(&actions, directory)
    }
    if let stdout { posix_spawn_file_actions_adddup2(&actions, stdout, 1) }
    for (source, target) in descriptors { posix_spawn_file_actions_adddup2(&actions, source, target) }
    var attributes = posix_spawnattr_t()
    posix_spawnattr_init(&attributes)
    defer { posix_spawnattr_destroy(&attributes) }
    var all = sigset_t()
    sigfillset(&all)
    posix_spawnattr_setsigdefault(&attributes, &all)
    var none = sigset_t()
    sigemptyset(&none)
    posix_spawnattr_setsigmask(&attributes, &none)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
    let arguments = argv.map { strdup($0) } + [nil]
    let variables = (environment ?? ProcessInfo.processInfo.environment).map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { for pointer in arguments + variables { free(pointer) } }
    var pid: pid_t = 0
    let code = posix_spawn(&pid, argv[0], &actions, &attributes, arguments, variables)
    guard code == 0 else { throw BenchmarkError("cannot start \(argv[0]): \(String(cString: strerror(code)))") }
    return pid
}

/// glibc's `posix_spawn_file_actions_addchdir_np` (2.29), which its header hides without _GNU_SOURCE.
private let addChdir:
    (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32)? =
        dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addchdir_np").map {
            unsafeBitCast(
                $0,
                to: (@convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, UnsafePointer<CChar>) -> Int32)
                    .self)
        }

/// Waits for `pid` (blocking) and returns its wait status.
@discardableResult
func reap(_ pid: pid_t) -> Int32 {
    var status: Int32 = 0
    while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
    return status
}

/// Waits for `pid` without blocking the caller's thread.
func reapLater(_ pid: pid_t) async {
    var status: Int32 = 0
    while waitpid(pid, &status, WNOHANG) == 0 { try? await Task.sleep(for: .milliseconds(20)) }
}

/// Runs `command` with /bin/sh; returns its wall time and what it wrote to stdout.
@discardableResult
func shell(_ command: String) throws -> (seconds: Double, output: String) {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { throw BenchmarkError("pipe: \(String(cString: strerror(errno)))") }
    for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
    let start = wallClock()
    let pid: pid_t
    do {
        pid = try spawn(["/bin/sh", "-c", command], stdout: fds[1])
    } catch {
        close(fds[0])
        close(fds[1])
        throw error
    }
    close(fds[1])
    var output = [UInt8]()
    var buffer = [UInt8](repeating: 0, count: 65536)
    while true {
        let count = read(fds[0], &buffer, buffer.count)
        if count < 0 && errno == EINTR { continue }
        if count <= 0 { break }
        output += buffer[0..<count]
    }
    close(fds[0])
    let status = reap(pid)
    let seconds = wallClock() - start
    guard status == 0 else { throw BenchmarkError("`\(command)` failed (wait status \(status))") }
    return (seconds, String(decoding: output, as: UTF8.self))
}

struct BenchmarkError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func wallClock() -> Double {
    var spec = timespec()
    clock_gettime(CLOCK_REALTIME, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) / 1e9
}
