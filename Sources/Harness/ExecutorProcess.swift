import CProcessSpawn
import Dispatch
import Foundation
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

/// The executor as a child process: started the way a Mesos agent starts it (exactly the given
/// environment, the sandbox as working directory, stdout/stderr into the sandbox's `stdout` and
/// `stderr` files, its own session and process group), and always torn down with everything it
/// started.
final class ExecutorProcess: Sendable {
    let process: ChildProcess
    let sandbox: String
    private let descendants = LockedValue<[Int32: Descendant]>([:])
    private let recordedTermination = LockedValue<Termination?>(nil)
    private let exitInstant = LockedValue<ContinuousClock.Instant?>(nil)

    /// When ``waitForExit()`` saw the executor end.
    var exitedAt: ContinuousClock.Instant? { exitInstant.withLock { $0 } }

    private struct Descendant {
        var pidfd: Int32
        var name: String
    }

    /// The executor's pid.
    var pid: Int32 { process.pid }

    private init(process: ChildProcess, sandbox: String) {
        self.process = process
        self.sandbox = sandbox
    }

    /// Starts `executable` with `arguments`, in `sandbox`, with exactly `environment`.
    static func start(
        executable: String, arguments: [String], environment: [String: String], sandbox: String
    ) throws(HarnessError) -> ExecutorProcess {
        let input = open("/dev/null", O_RDONLY | O_CLOEXEC)
        let output = open(sandbox + "/stdout", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        let errors = open(sandbox + "/stderr", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        defer { for fd in [input, output, errors] where fd >= 0 { close(fd) } }
        guard input >= 0, output >= 0, errors >= 0 else {
            throw .executorNotStarted(
                "cannot open the sandbox's stdout/stderr in \(sandbox): \(String(cString: strerror(errno)))")
        }
        let request = SpawnRequest(
            executable: executable,
            arguments: [executable] + arguments,
            environment: environment.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" },
            workingDirectory: sandbox,
            fileDescriptors: [(input, 0), (output, 1), (errors, 2)])
        do {
            return ExecutorProcess(process: try ChildProcess.spawn(request), sandbox: sandbox)
        } catch {
            throw .executorNotStarted("\(error)")
        }
    }

    /// Remembers every process below the executor right now (by pidfd, immune to pid reuse), so
    /// that whatever it leaves behind can be found and killed at the end.
    /// Processes that have ended since are forgotten (their pidfds closed), so a long job holds
    /// one descriptor per process alive, not per process ever started.
    func trackDescendants() {
        let found = ProcessTable.descendants(of: pid)
        descendants.withLock { known in
            for (pid, descendant) in known where Self.hasEnded(descendant.pidfd) {
                close(descendant.pidfd)
                known[pid] = nil
            }
            for (pid, name) in found where known[pid] == nil {
                let fd = cps_pidfd_open(pid)
                if fd >= 0 { known[pid] = Descendant(pidfd: fd, name: name) }
            }
        }
    }

    /// A pidfd turns readable once its process has ended (reaped or a zombie).
    private static func hasEnded(_ pidfd: Int32) -> Bool {
        var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1
    }

    /// Waits for the executor to end and reaps it. Call exactly once, from the task that owns
    /// the process; ``terminate(within:grace:onDeadline:)`` and ``exited`` rely on it.
    func waitForExit() async -> Termination {
        let termination = await process.wait()
        exitInstant.withLock { $0 = .now }
        recordedTermination.withLock { $0 = termination }
        exitAlarm.ring()
        return termination
    }

    /// How the executor ended, once ``waitForExit()`` has seen it.
    var termination: Termination? { recordedTermination.withLock { $0 } }

    /// Rings when the executor has exited.
    let exitAlarm = Alarm()

    /// Waits until the executor has exited; if it has not `deadline` from now (or at once when the
    /// calling task is cancelled, as on Ctrl-C) it gets SIGTERM, and `grace` after that SIGKILL
    /// to its whole process group. `onDeadline` runs when the deadline passes with it alive.
    func terminate(within deadline: Duration, grace: Duration, onDeadline: () async -> Void = {}) async {
        let alarm = exitAlarm
        let exited = await alarm.sleep(deadline, cancellable: true)
        guard !exited, termination == nil else { return }
        await onDeadline()
        process.signal(SIGTERM)
        guard await !alarm.sleep(grace), termination == nil else { return }
        process.signalGroup(SIGKILL)
        process.signal(SIGKILL)
        _ = await alarm.sleep(.seconds(3600))
    }

    /// Kills what the executor left running (its process group, every tracked descendant still
    /// alive, and every process carrying this sandbox in `MESOS_SANDBOX`, which finds tasks that
    /// escaped into other sessions and were re-parented); returns a description of each leftover.
    func killLeftovers() -> [String] {
        trackDescendants()
        process.signalGroup(SIGKILL)
        // Twice: a process caught in the middle of an exec (an escaped `sh -c '…; exec sleep'`)
        // can show no environment for that moment; the second look, after the first kills, sees it.
        var leftovers = killTracked(andCarrying: "MESOS_SANDBOX=" + sandbox)
        leftovers += killTracked(andCarrying: "MESOS_SANDBOX=" + sandbox)
        return leftovers
    }

    /// Adds every process whose environment holds `entry` to the tracked ones, then kills every
    /// tracked process still alive (waiting for each to end) and forgets them all.
    private func killTracked(andCarrying entry: String) -> [String] {
        for (pid, name) in ProcessTable.processes(withEnvironment: entry) where pid != self.pid {
            descendants.withLock { known in
                guard known[pid] == nil else { return }
                let fd = cps_pidfd_open(pid)
                if fd >= 0 { known[pid] = Descendant(pidfd: fd, name: name) }
            }
        }
        return descendants.withLock { known in
            var leftovers: [String] = []
            for (pid, descendant) in known.sorted(by: { $0.key < $1.key }) {
                if cps_pidfd_send_signal(descendant.pidfd, 0) == 0, !ProcessTable.isZombie(pid) {
                    _ = cps_pidfd_send_signal(descendant.pidfd, SIGKILL)
                    leftovers.append("pid \(pid) (\(descendant.name))")
                    // A pidfd turns readable when its process has ended; SIGKILL makes that prompt
                    // (the bound is for a process stuck in the kernel, not for a busy machine).
                    var entry = pollfd(fd: descendant.pidfd, events: Int16(POLLIN), revents: 0)
                    _ = poll(&entry, 1, 30_000)
                }
                close(descendant.pidfd)
            }
            known.removeAll()
            return leftovers
        }
    }
}

/// A one-shot event to wait for with a time limit. Unless asked to, a sleep ignores task
/// cancellation (teardown must still give the executor its grace period after Ctrl-C).
final class Alarm: Sendable {
    private struct State {
        var rung = false
        var nextID = 0
        var waiters: [Int: CheckedContinuation<Bool, Never>] = [:]
        var cancelled: Set<Int> = []
    }

    private let state = LockedValue(State())

    /// Whether ``ring()`` was called.
    var isRung: Bool { state.withLock { $0.rung } }

    /// Returns true as soon as the alarm rings (at once if it has), false after `duration` or,
    /// when `cancellable`, as soon as the calling task is cancelled.
    @discardableResult
    func sleep(_ duration: Duration, cancellable: Bool = false) async -> Bool {
        let (seconds, attoseconds) = duration.components
        let nanoseconds = max(0, Int(seconds) * 1_000_000_000 + Int(attoseconds / 1_000_000_000))
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                let immediate: Bool? = state.withLock { state in
                    if state.rung { return true }
                    if state.cancelled.contains(id) { return false }
                    state.waiters[id] = continuation
                    return nil
                }
                if let immediate { return continuation.resume(returning: immediate) }
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) {
                    self.state.withLock { $0.waiters.removeValue(forKey: id) }?.resume(returning: false)
                }
            }
        } onCancel: {
            guard cancellable else { return }
            let waiter = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                if let waiter = state.waiters.removeValue(forKey: id) { return waiter }
                state.cancelled.insert(id)
                return nil
            }
            waiter?.resume(returning: false)
        }
    }

    /// Wakes every sleeper; later sleeps return at once.
    func ring() {
        let waiters = state.withLock { state in
            state.rung = true
            defer { state.waiters.removeAll() }
            return state.waiters
        }
        for waiter in waiters.values { waiter.resume(returning: true) }
    }
}

/// Reads `/proc` to find a process's descendants.
enum ProcessTable {
    /// Every (pid, command name) below `root`.
    static func descendants(of root: Int32) -> [(Int32, String)] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        var children: [Int32: [(Int32, String)]] = [:]
        for entry in entries {
            guard let pid = Int32(entry), let (parent, name, _) = stat(pid) else { continue }
            children[parent, default: []].append((pid, name))
        }
        var result: [(Int32, String)] = []
        var queue = [root]
        while let next = queue.popLast() {
            for child in children[next] ?? [] {
                result.append(child)
                queue.append(child.0)
            }
        }
        return result
    }

    /// Every (pid, command name) whose environment holds exactly `entry` (`NAME=value`).
    static func processes(withEnvironment entry: String) -> [(Int32, String)] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        let wanted = Array(entry.utf8)
        return entries.compactMap { name -> (Int32, String)? in
            guard let pid = Int32(name),
                let environment = FileManager.default.contents(atPath: "/proc/\(name)/environ"),
                environment.split(separator: 0).contains(where: { $0.elementsEqual(wanted) }),
                let (_, command, state) = stat(pid), state != "Z"
            else { return nil }
            return (pid, command)
        }
    }

    static func isZombie(_ pid: Int32) -> Bool { stat(pid)?.state == "Z" }

    /// (parent pid, command name, state) from `/proc/<pid>/stat`.
    private static func stat(_ pid: Int32) -> (parent: Int32, name: String, state: Character)? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")")
        else { return nil }
        let name = String(text[text.index(after: open)..<close])
        let rest = text[text.index(after: close)...].split(separator: " ")
        guard rest.count > 2, let state = rest[0].first, let parent = Int32(rest[1]) else { return nil }
        return (parent, name, state)
    }
}
