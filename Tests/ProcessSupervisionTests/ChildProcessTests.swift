import ProcessSupervision
import SystemSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// Real child processes: spawned, signalled, reaped. Nothing waits on a timer; each wait ends
/// because a process ended (bounds only turn a hang into a failure).
@Suite(.timeLimit(.minutes(2)))
struct ChildProcessTests {
    private let environment = ["PATH=/usr/bin:/bin", "LC_ALL=C"]

    private func shell(_ script: String, environment extra: [String] = [], fds: [(Int32, Int32)] = [])
        throws -> ChildProcess
    {
        try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/sh", arguments: ["sh", "-c", script], environment: environment + extra,
                fileDescriptors: fds.map { (source: $0.0, target: $0.1) }))
    }

    /// Runs `script` with its stdout on a pipe; returns how it ended and what it wrote.
    private func output(of script: String, environment extra: [String] = [], workingDirectory: String? = nil)
        async throws -> (Termination, String)
    {
        let ends = try makePipe()
        let child = try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/sh", arguments: ["sh", "-c", script], environment: environment + extra,
                workingDirectory: workingDirectory, fileDescriptors: [(source: ends[1], target: 1)]))
        close(ends[1])
        let text = await readAll(ends[0])
        close(ends[0])
        return (await child.wait(), text)
    }

    /// A pipe whose ends no other child inherits (a child gets one only through its mapping).
    private func makePipe() throws -> [Int32] {
        var ends: [Int32] = [0, 0]
        try #require(pipe(&ends) == 0)
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return ends
    }

    /// Reads until end of file: the pipe ends when every process holding its write end is gone.
    /// The reads block, so they run on a thread of their own, not on the cooperative pool the
    /// suites share.
    private func readAll(_ fd: Int32) async -> String {
        await BlockingThread.run {
            var bytes: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(fd, &buffer, buffer.count)
                if count < 0 && errno == EINTR { continue }
                if count <= 0 { break }
                bytes += buffer.prefix(count)
            }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// Reads one line (up to a newline) without waiting for the end of the stream (on a thread of
    /// its own, as `readAll`).
    private func readLine(_ fd: Int32) async -> String {
        await BlockingThread.run {
            var bytes: [UInt8] = []
            var byte: UInt8 = 0
            while read(fd, &byte, 1) == 1, byte != UInt8(ascii: "\n") { bytes.append(byte) }
            return String(decoding: bytes, as: UTF8.self)
        }
    }

    /// A bare `posix_spawn` of `arguments` (the program's path first): a child in this process's own
    /// session and group, which `ChildProcess.spawn` never makes, or one it does not track. It keeps
    /// none of this process's descriptors but the standard three: the suites share this process and
    /// run in parallel, and a child holding another test's pipe keeps it open while it lives (a
    /// test waiting for that pipe's reader to go, a write failing with EPIPE, would wait for ever).
    private static func bareSpawn(_ arguments: [String]) throws -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // glibc 2.34 and later; its header declares it only for GNU sources, so Swift's Glibc does not.
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        let symbol = try #require(
            dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np"),
            "glibc has no posix_spawn_file_actions_addclosefrom_np")
        try #require(unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3) == 0)
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for argument in argv { free(argument) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        try #require(rc == 0, "posix_spawn: \(rc)")
        return pid
    }

    /// A child that leads no process group (as a fork server's new worker before its setsid): a
    /// signal for its group reaches the child itself.
    @Test func aSignalForTheGroupOfAChildThatLeadsNoneReachesTheChild() async throws {
        // posix_spawn without a new session or group: the child stays in ours.
        let pid = try Self.bareSpawn(["/bin/sleep", "3600"])
        let child = try ChildProcess.adopt(pid: pid)
        #expect(getpgid(pid) == getpgrp())
        child.signalGroup(SIGKILL)
        #expect(await child.wait() == .signaled(SIGKILL))
    }

    @Test func anExitStatusIsAResult() async throws {
        #expect(try await shell("exit 0").wait() == .exited(0))
        #expect(try await shell("exit 3").wait() == .exited(3))
        #expect(Termination.exited(3).description == "exited with status 3")
        #expect(!Termination.exited(3).isSuccess)
    }

    @Test func theChildGetsItsArgumentsEnvironmentAndWorkingDirectory() async throws {
        let (termination, text) = try await output(
            of: #"printf '%s|%s|%s' "$0" "$GREETING" "$(pwd)""#, environment: ["GREETING=hello there"],
            workingDirectory: "/usr")
        #expect(termination == .exited(0))
        #expect(text == "sh|hello there|/usr")
    }

    /// A child starts with the process's nice value, not the spawning thread's: the executor's task
    /// threads run at nice -2, and the tasks and workers they start must not.
    @Test func aChildStartsWithTheProcesssNiceValueNotTheSpawningThreads() async throws {
        errno = 0
        let processNice = getpriority(__priority_which_t(PRIO_PROCESS.rawValue), id_t(getpid()))
        try #require(errno == 0)
        let ends = try makePipe()
        let spawned: Result<ChildProcess, ProcessError> = await BlockingThread.run { [environment] in
            // A thread of its own, given up afterwards: raising its value needs no privilege.
            _ = setpriority(__priority_which_t(PRIO_PROCESS.rawValue), 0, processNice + 3)
            return Result { () throws(ProcessError) -> ChildProcess in
                try ChildProcess.spawn(
                    SpawnRequest(
                        executable: "/bin/sh", arguments: ["sh", "-c", "cut -d' ' -f19 /proc/$$/stat"],
                        environment: environment, fileDescriptors: [(source: ends[1], target: 1)]))
            }
        }
        close(ends[1])
        let child = try spawned.get()
        let text = await readAll(ends[0])
        close(ends[0])
        #expect(await child.wait() == .exited(0))
        #expect(text == "\(processNice)\n")
    }

    @Test func aBareNameIsLookedUpInTheChildsPath() async throws {
        let child = try ChildProcess.spawn(
            SpawnRequest(executable: "true", arguments: ["true"], environment: environment))
        #expect(await child.wait() == .exited(0))
    }

    @Test func aProgramThatCannotStartIsAnError() throws {
        let error = #expect(throws: ProcessError.self) {
            try ChildProcess.spawn(
                SpawnRequest(executable: "/nonexistent/program", arguments: ["program"], environment: environment))
        }
        #expect(error?.isSpawnFailure == true)
        #expect(error?.errno == ENOENT)
        #expect(error.map { "\($0)" }?.hasPrefix("cannot start '/nonexistent/program'") == true)
    }

    @Test func aMissingWorkingDirectoryIsAnError() throws {
        let error = #expect(throws: ProcessError.self) {
            try ChildProcess.spawn(
                SpawnRequest(
                    executable: "/bin/true", arguments: ["true"], environment: environment,
                    workingDirectory: "/nonexistent/directory"))
        }
        #expect(error?.errno == ENOENT)
        #expect(
            error.map { "\($0)" }?.hasPrefix("entering the working directory /nonexistent/directory failed") == true)
    }

    /// Run as root (as CI runs): the child takes the user's ids, its groups included, before it
    /// enters its working directory and execs; the executor's own ids stay as they were.
    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func theChildRunsAsTheUserAsked() async throws {
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        let ends = try makePipe()
        let child = try ChildProcess.spawn(
            SpawnRequest(
                executable: "/bin/sh", arguments: ["sh", "-c", "id -u; id -g; id -G; pwd"], environment: environment,
                workingDirectory: "/", fileDescriptors: [(ends[1], 1)], user: nobody))
        close(ends[1])
        let text = await readAll(ends[0])
        close(ends[0])
        #expect(await child.wait() == .exited(0))
        let groups = nobody.groups.map(String.init).joined(separator: " ")
        #expect(text == "\(nobody.uid)\n\(nobody.gid)\n\(groups)\n/\n")
        #expect(geteuid() == 0 && getegid() == 0)
    }

    /// A user the child may not switch to (not root: any other user) stops it before it runs.
    @Test(.enabled(if: geteuid() != 0, "as root any user can be switched to"))
    func aUserThatCannotBeTakenStopsTheChildBeforeItRuns() throws {
        let other = UserIdentity(name: "other", uid: geteuid() + 1, gid: getegid() + 1, groups: [getegid() + 1])
        let error = #expect(throws: ProcessError.self) {
            try ChildProcess.spawn(
                SpawnRequest(executable: "/bin/true", arguments: ["true"], environment: environment, user: other))
        }
        #expect(error?.errno == EPERM)
        #expect(error.map { "\($0)" }?.hasPrefix("switching to user other") == true)
    }

    /// Root can enter what the user cannot: the child enters its working directory as the user.
    @Test(.enabled(if: geteuid() == 0, "switching users needs root"))
    func theWorkingDirectoryIsEnteredAsTheUser() throws {
        let nobody = try #require(try UserIdentity.lookUp("nobody"))
        var template = Array("/tmp/child-process-closed-XXXXXX".utf8CString)
        let closed = try #require(mkdtemp(&template).map { String(cString: $0) })
        defer { rmdir(closed) }
        let error = #expect(throws: ProcessError.self) {
            try ChildProcess.spawn(
                SpawnRequest(
                    executable: "/bin/true", arguments: ["true"], environment: environment, workingDirectory: closed,
                    user: nobody))
        }
        #expect(error?.errno == EACCES)
        #expect(error.map { "\($0)" }?.hasPrefix("entering the working directory \(closed) as user nobody") == true)
    }

    /// The child's descriptor table holds only what lies below its highest mapped descriptor and is
    /// then cut down to its mappings: descriptors above and below the mapped ones, inheritable or
    /// not, never reach the program, and a mapping from a high number still arrives.
    @Test func theChildSeesItsMappedDescriptorsAndNoOthers() async throws {
        let inheritableLow = open("/dev/null", O_RDONLY)
        let inheritableHigh = fcntl(inheritableLow, F_DUPFD, 700)
        let ends = try makePipe()
        // The write end far above the others, as a kept cgroup file would be.
        let highWriteEnd = fcntl(ends[1], F_DUPFD_CLOEXEC, 900)
        let aboveIt = fcntl(inheritableLow, F_DUPFD, 950)
        try #require(inheritableLow >= 0 && inheritableHigh >= 700 && highWriteEnd >= 900 && aboveIt >= 950)
        defer { for fd in [inheritableLow, inheritableHigh, aboveIt, ends[0]] { close(fd) } }
        close(ends[1])
        let probes = [inheritableLow, inheritableHigh, highWriteEnd, aboveIt, 3]
        let script = probes.map { "[ -e /proc/$$/fd/\($0) ] && echo \($0) open || echo \($0) closed" }
            .joined(separator: "; ")
        let child = try shell(script, fds: [(highWriteEnd, 1)])
        close(highWriteEnd)
        let text = await readAll(ends[0])
        #expect(await child.wait() == .exited(0))
        #expect(text == probes.map { "\($0) closed\n" }.joined())
    }

    @Test func aCgroupThatCannotBeJoinedStopsTheChildBeforeItRuns() throws {
        let readOnly = open("/dev/null", O_RDONLY | O_CLOEXEC)
        #expect(readOnly >= 0)
        defer { close(readOnly) }
        let error = #expect(throws: ProcessError.self) {
            try ChildProcess.spawn(
                SpawnRequest(
                    executable: "/bin/true", arguments: ["true"], environment: environment,
                    joinCgroups: CgroupJoin(files: [readOnly])))
        }
        #expect(error?.isSpawnFailure == false)
        #expect(error.map { "\($0)" }?.hasPrefix("joining the cgroup before exec failed") == true)
    }

    /// A directory to be created in that is no cgroup2 directory: the kernel refuses the child (or,
    /// where clone3 is refused, it finds no `cgroup.procs` there), and nothing runs.
    @Test func aCgroupDirectoryThatIsNoCgroupStopsTheChildBeforeItRuns() throws {
        let directory = open("/tmp", O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        #expect(directory >= 0)
        defer { close(directory) }
        let error = #expect(throws: ProcessError.self) {
            try ChildProcess.spawn(
                SpawnRequest(
                    executable: "/bin/true", arguments: ["true"], environment: environment,
                    joinCgroups: CgroupJoin(directory: directory)))
        }
        #expect(error?.isSpawnFailure == false)
        #expect(error.map { "\($0)" }?.hasPrefix("joining the cgroup before exec failed") == true)
    }

    @Test func theChildLeadsItsOwnSessionAndProcessGroup() async throws {
        let ends = try makePipe()
        // It waits for its stdin to close, so it is surely alive while we look.
        let child = try shell("read line", fds: [(ends[0], 0)])
        close(ends[0])
        #expect(getpgid(child.pid) == child.pid)
        #expect(getsid(child.pid) == child.pid)
        #expect(getsid(child.pid) != getsid(0))
        close(ends[1])
        #expect(await child.wait() == .exited(1))
    }

    @Test func aSignalReachesTheChild() async throws {
        let child = try shell("exec sleep 1000")
        child.signal(SIGTERM)
        let termination = await child.wait()
        #expect(termination == .signaled(SIGTERM))
        #expect(termination.description == "terminated by signal SIGTERM (15)")
        // Reaped: a late signal goes nowhere (the pidfd is closed, no recycled pid can be hit).
        child.signal(SIGKILL)
    }

    @Test func aGroupSignalReachesWhatTheChildStartedEvenAfterTheChildExited() async throws {
        let ends = try makePipe()
        let child = try shell("sleep 1000 >/dev/null & echo $!", fds: [(ends[1], 1)])
        close(ends[1])
        let grandchild = try #require(Int32(await readLine(ends[0])))
        close(ends[0])
        #expect(await child.wait() == .exited(0))
        #expect(getpgid(grandchild) == child.pid)
        child.signalGroup(SIGKILL)
        #expect(await ProcessObservation.waitForExit(of: grandchild, timeoutMilliseconds: 60_000))
    }

    @Test func reapingReportsTheUsageTheKernelAccounted() async throws {
        // The shell holds 16 MiB of text in a variable, so its peak resident set is above that.
        let child = try shell("x=$(head -c 16777216 /dev/zero | tr '\\0' a)")
        let (termination, usage) = await child.waitWithUsage()
        #expect(termination == .exited(0))
        #expect(usage.peakMemoryBytes >= 16 << 20)
        #expect(usage.userCPUMicroseconds >= 0 && usage.systemCPUMicroseconds >= 0)
    }

    @Test func manyChildrenAreReapedTogether() async throws {
        let children = try (0..<32).map { try shell("exit \($0 % 7)") }
        let terminations = await withTaskGroup(of: (Int, Termination).self) { group in
            for (index, child) in children.enumerated() {
                group.addTask { (index, await child.wait()) }
            }
            var results: [Int: Termination] = [:]
            for await (index, termination) in group { results[index] = termination }
            return results
        }
        for index in 0..<32 { #expect(terminations[index] == .exited(Int32(index % 7))) }
    }

    @Test func aChildStartedByOtherMeansIsAdoptedAndReaped() async throws {
        // posix_spawn stands in for the fork server's clone(CLONE_PARENT): a child we did not spawn.
        let child = try ProcessReaper.shared.creatingChildren { () throws -> ChildProcess in
            let pid = try Self.bareSpawn(["/bin/sh", "-c", "exit 5"])
            // Even if it has exited already, it is not reaped yet, so the pid still names it.
            return try ChildProcess.adopt(pid: pid)
        }
        #expect(await child.wait() == .exited(5))
    }

    /// The reaper's thread also waits for other descriptors (the executor's signalfd), and calls
    /// back there each time one is readable, while it goes on reaping.
    @Test func theReapersThreadWatchesOtherDescriptorsToo() async throws {
        // Both ends stay open: a watched descriptor is watched for the life of the process, and a
        // read end whose writer closed is readable (at its end) for ever, which would keep the
        // reaper's thread calling this handler for the rest of the suite.
        let ends = try makePipe()
        _ = fcntl(ends[0], F_SETFL, O_NONBLOCK)
        let read = LockedValue<[UInt8]>([])
        let stream = AsyncStream<Void>.makeStream()
        #expect(
            ProcessReaper.shared.watch(ends[0]) {
                var byte: UInt8 = 0
                while Glibc.read(ends[0], &byte, 1) == 1 {
                    read.withLock { $0.append(byte) }
                    stream.continuation.yield()
                }
            })
        var iterator = stream.stream.makeAsyncIterator()
        for value: UInt8 in [7, 9] {
            var byte = value
            #expect(write(ends[1], &byte, 1) == 1)
            await iterator.next()
            #expect(try await shell("exit \(value)").wait() == .exited(Int32(value)))
        }
        #expect(read.withLock { $0 } == [7, 9])
    }

    @Test func signalNamesAreReadable() {
        #expect(Signals.name(of: SIGKILL) == "SIGKILL (9)")
        #expect(Signals.name(of: 64) == "64")
    }
}
