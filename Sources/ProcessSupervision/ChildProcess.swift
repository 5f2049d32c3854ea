import CProcessSpawn
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// What to run. Paths and strings go to the kernel unchanged.
public struct SpawnRequest: Sendable {
    /// An absolute or relative path, or a bare name looked up in the child's PATH.
    public var executable: String
    /// argv, including argv[0].
    public var arguments: [String]
    /// The complete environment of the child ("NAME=value").
    public var environment: [String]
    /// The working directory; nil keeps ours.
    public var workingDirectory: String?
    /// Descriptors the child sees: parent fd -> child fd. Unmapped 0/1/2 are closed in the child.
    public var fileDescriptors: [(source: Int32, target: Int32)]
    /// The cgroups the child is in before it execs.
    public var joinCgroups: CgroupJoin
    /// The child's `oom_score_adj` (-1000 to 1000), set before it execs; nil leaves it as ours.
    public var oomScoreAdjustment: Int?
    /// The user the child runs as (taken after everything else, before it enters its working
    /// directory and execs); nil runs it as ours. Needs the privilege to switch users.
    public var user: UserIdentity?

    public init(
        executable: String,
        arguments: [String],
        environment: [String],
        workingDirectory: String? = nil,
        fileDescriptors: [(source: Int32, target: Int32)] = [],
        joinCgroups: CgroupJoin = CgroupJoin(),
        oomScoreAdjustment: Int? = nil,
        user: UserIdentity? = nil
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.fileDescriptors = fileDescriptors
        self.joinCgroups = joinCgroups
        self.oomScoreAdjustment = oomScoreAdjustment
        self.user = user
    }
}

/// Open descriptors through which a spawned child is in its cgroups before it execs; the caller
/// closes them (``close()``) once the child is started.
public struct CgroupJoin: Sendable {
    /// Files the child writes "0" to: cgroup v1 `tasks` files (a move of the child's one thread,
    /// which does not wait for an RCU grace period as a `cgroup.procs` write can) or `cgroup.procs`.
    public var files: [Int32]
    /// A cgroup2 directory the child is created in (clone3's CLONE_INTO_CGROUP, which does not
    /// wait either); where the kernel refuses that, the child joins it through its `cgroup.procs`.
    public var directory: Int32?

    public init(files: [Int32] = [], directory: Int32? = nil) {
        self.files = files
        self.directory = directory
    }

    public func close() {
        for fd in files { _ = Glibc.close(fd) }
        if let directory { _ = Glibc.close(directory) }
    }
}

/// A running child: the leader of its own session and process group.
///
/// Signals go through a pidfd, so a recycled pid can never be hit. Call ``wait()`` exactly once;
/// it reaps the child and releases the pidfd.
public final class ChildProcess: Sendable {
    public let pid: Int32
    private let pidfd: LockedValue<Int32?>
    private let reaper: ProcessReaper

    init(pid: Int32, pidfd: Int32, reaper: ProcessReaper) {
        self.pid = pid
        self.pidfd = LockedValue(pidfd)
        self.reaper = reaper
    }

    /// Starts `request` in a new session. Throws ``ProcessError`` when the program cannot be started
    /// (not found, not executable, bad working directory, a cgroup that cannot be joined).
    public static func spawn(_ request: SpawnRequest, reaper: ProcessReaper = .shared) throws(ProcessError)
        -> ChildProcess
    {
        var pid: pid_t = 0
        var pidfd: Int32 = -1
        var failedStep: Int32 = 0
        let mappings = request.fileDescriptors.map { cps_fd_mapping(source: $0.source, target: $0.target) }
        let searchPath: Int32 = request.executable.contains("/") ? 0 : 1
        let rc = reaper.creatingChildren {
            let rc = withCStringArray(request.arguments) { argv in
                withCStringArray(request.environment) { envp in
                    mappings.withUnsafeBufferPointer { maps in
                        request.joinCgroups.files.withUnsafeBufferPointer { joins in
                            withOptionalCString(request.workingDirectory) { cwd in
                                withOptionalCString(request.oomScoreAdjustment.map(String.init)) { oomScore in
                                    withIdentity(request.user) { identity in
                                        cps_spawn(
                                            request.executable, argv, envp, cwd, maps.baseAddress, Int32(maps.count),
                                            searchPath, joins.baseAddress, Int32(joins.count),
                                            request.joinCgroups.directory ?? -1, oomScore, identity,
                                            &pid, &pidfd, &failedStep)
                                    }
                                }
                            }
                        }
                    }
                }
            }
            if rc == 0 { reaper.track(pid) }
            return rc
        }
        guard rc == 0 else {
            if failedStep == 1 { throw .systemCall("joining the cgroup before exec", errno: rc) }
            if failedStep == 3, let user = request.user {
                throw .systemCall("switching to user \(user) before exec", errno: rc)
            }
            if failedStep == 4, let directory = request.workingDirectory {
                let user = request.user.map { " as user \($0.name)" } ?? ""
                throw .systemCall("entering the working directory \(directory)\(user)", errno: rc)
            }
            throw .spawnFailed(request.executable, errno: rc)
        }
        return ChildProcess(pid: pid, pidfd: pidfd, reaper: reaper)
    }

    /// Whether ``spawn(_:reaper:)`` still creates children in their cgroup2 directory (see
    /// ``CgroupJoin/directory``): true until a child so created is found killed at birth (a kernel
    /// that compares the creator's and the cgroup's counts of `cgroup.kill`s, see CProcessSpawn);
    /// that spawn still starts its program, joining through `cgroup.procs`, and so do all later
    /// ones. Checked by the spawn itself, so a start pays for no trial child.
    public static var createsChildrenInCgroups: Bool { cps_spawn_creates_in_cgroup() != 0 }

    /// Takes charge of `pid`, a child of this process started by other means than ``spawn(_:reaper:)``
    /// (a worker fork server's `clone(CLONE_PARENT)`). Until it is reaped, a child's pid cannot be
    /// reused, so the pidfd opened here names that very process. Call it inside
    /// ``ProcessReaper/creatingChildren(_:)`` together with what created the child.
    public static func adopt(pid: Int32, reaper: ProcessReaper = .shared) throws(ProcessError) -> ChildProcess {
        let fd = cps_pidfd_open(pid)
        guard fd >= 0 else { throw .systemCall("pidfd_open(\(pid))", errno: errno) }
        reaper.track(pid)
        return ChildProcess(pid: pid, pidfd: fd, reaper: reaper)
    }

    /// Sets the child's `oom_score_adj` (-1000 to 1000), which what it starts from then on
    /// inherits: for a child started by other means than a spawn that could set it at birth (a
    /// worker forked by a fork server). Raising it needs no privilege over one's own processes.
    public func setOOMScoreAdjustment(_ value: Int) throws(ProcessError) {
        let path = "/proc/\(pid)/oom_score_adj"
        let fd = open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw .systemCall("opening \(path)", errno: errno) }
        defer { close(fd) }
        let text = Array("\(value)".utf8)
        let written = text.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == text.count else { throw .systemCall("writing \(value) to \(path)", errno: errno) }
    }

    /// Sends `signal` to the child alone. A child already reaped is left alone.
    public func signal(_ signal: Int32) {
        pidfd.withLock { fd in
            guard let fd else { return }
            _ = cps_pidfd_send_signal(fd, signal)
        }
    }

    /// Sends `signal` to the child's whole process group (the child and everything it started
    /// that stayed in its group), even after the child itself has exited. A child that leads no
    /// group (yet: a worker just forked by a fork server, before its `setsid`) gets it alone.
    public func signalGroup(_ signal: Int32) {
        if killpg(pid, signal) != 0 && errno == ESRCH { self.signal(signal) }
    }

    /// Waits for the child to end and reaps it.
    public func wait() async -> Termination {
        await waitWithUsage().termination
    }

    /// Waits for the child to end, reaps it, and says what the kernel accounted to it (and to the
    /// descendants it waited for).
    public func waitWithUsage() async -> (termination: Termination, usage: ProcessUsage) {
        guard let fd = pidfd.withLock({ $0 }) else { return (.exited(-1), ProcessUsage()) }
        let result = await reaper.wait(pidfd: fd, pid: pid)
        pidfd.withLock { fd in
            if let open = fd { close(open) }
            fd = nil
        }
        return result
    }

    deinit {
        pidfd.withLock { fd in
            if let open = fd { close(open) }
        }
    }
}

private func withOptionalCString<R>(_ string: String?, _ body: (UnsafePointer<CChar>?) -> R) -> R {
    guard let string else { return body(nil) }
    return string.withCString(body)
}

func withIdentity<R>(_ user: UserIdentity?, _ body: (UnsafePointer<cps_identity>?) -> R) -> R {
    guard let user else { return body(nil) }
    return user.groups.withUnsafeBufferPointer { groups in
        var identity = cps_identity(
            uid: user.uid, gid: user.gid, groups: groups.baseAddress, group_count: Int32(groups.count))
        return withUnsafePointer(to: &identity) { body($0) }
    }
}

private func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for pointer in pointers { free(pointer) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

/// Observing processes that are not our children (grandchildren reparented to init, say).
public enum ProcessObservation {
    /// Waits until `pid` has exited (it may be a zombie of another parent), up to `timeoutMilliseconds`.
    /// Returns false if it still runs then. Meant for tests and tools. The wait blocks a thread of
    /// its own, never one of the cooperative pool's: two callers blocking those (as many as cores)
    /// would stop every task of the process, the one that makes `pid` exit included, until their
    /// time ran out.
    public static func waitForExit(of pid: Int32, timeoutMilliseconds: Int32) async -> Bool {
        await BlockingThread.run {
            let fd = cps_pidfd_open(pid)
            if fd < 0 { return errno == ESRCH }
            defer { close(fd) }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            return poll(&entry, 1, timeoutMilliseconds) == 1
        }
    }
}
