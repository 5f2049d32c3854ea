import Isolation
import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A started worker: the process and the executor's ends of its two pipes.
struct LaunchedWorker: Sendable {
    let child: ChildProcess
    /// The executor reads the worker's messages here (the worker writes its fd 4).
    let fromWorker: Int32
    /// The executor writes messages here (the worker reads its fd 3).
    let toWorker: Int32
    /// Its stdout/stderr files.
    let logs: StandardStreamFiles
    /// For a worker the fork server forked: the functions the server offered (those the worker
    /// will offer in its hello). Nil for a spawned worker.
    var forkedOffering: Set<String>? = nil
}

/// Starts worker processes: own session and process group, stdin /dev/null, stdout/stderr to
/// files in the sandbox, fd 3 and 4 for the worker protocol.
/// A worker comes from the fork server when there is one that is ready, else from posix_spawn.
struct WorkerLauncher: Sendable {
    let configuration: WorkerPoolConfiguration
    let forkServer: ForkServer?

    /// `logDirectory` is relative to the sandbox; `extraDescriptors` map our descriptors to more
    /// of the worker's (spawned workers only). With a `cgroup`, a spawned worker joins it before it
    /// execs, a forked one joins it before it does anything else (a server that cannot have its
    /// workers join is moved in by pid before any run is sent to it).
    func launch(
        logDirectory: String, environment extra: [String: String],
        extraDescriptors: [(source: Int32, target: Int32)] = [], cgroup: Cgroup? = nil
    ) async throws(WorkerPoolError) -> LaunchedWorker {
        let ends = try openEnds(logDirectory: logDirectory)
        defer { ends.streams.close() }
        let (streams, down, up) = ends
        // A forked worker joins its cgroup itself when the server can do that, so that all it does
        // is its task's and the executor makes no move; else it is moved in by its pid.
        var joins: [Int32] = []
        if let forkServer, let cgroup, forkServer.joinsCgroups {
            do {
                if forkServer.createsInCgroups {
                    let join = try cgroup.openSpawnJoin()
                    joins = join.files + (join.directory.map { [$0] } ?? [])
                } else {
                    joins = try cgroup.openJoinFiles()
                }
            } catch {
                for fd in down + up { close(fd) }
                throw .launchFailed("cannot open the worker's cgroup: \(error)")
            }
            if joins.count > ForkServer.maximumJoins {
                for fd in joins { close(fd) }
                joins = []
            }
        }
        defer { for fd in joins { close(fd) } }
        if let forkServer,
            let child = await forkServer.fork(
                stdout: streams.stdout, stderr: streams.stderr, input: down[0], output: up[1], joins: joins,
                environment: extra)
        {
            close(down[0])
            close(up[1])
            if let cgroup, joins.isEmpty {
                do {
                    try cgroup.attach(child.pid)
                } catch {
                    child.signalGroup(SIGKILL)
                    close(up[0])
                    close(down[1])
                    throw .launchFailed("cannot move the forked worker into its cgroup: \(error)")
                }
            }
            return LaunchedWorker(
                child: child, fromWorker: up[0], toWorker: down[1], logs: streams,
                forkedOffering: forkServer.offeredFunctions)
        }
        return try spawn(ends, environment: extra, extraDescriptors: extraDescriptors, cgroup: cgroup)
    }

    /// A spawned worker, never a forked one (the fork server itself starts so).
    func spawnWorker(
        logDirectory: String, environment extra: [String: String],
        extraDescriptors: [(source: Int32, target: Int32)] = []
    ) throws(WorkerPoolError) -> LaunchedWorker {
        let ends = try openEnds(logDirectory: logDirectory)
        defer { ends.streams.close() }
        return try spawn(ends, environment: extra, extraDescriptors: extraDescriptors, cgroup: nil)
    }

    /// The worker's log files and its two protocol pipes (ours and its ends).
    private typealias Ends = (streams: StandardStreamFiles, down: [Int32], up: [Int32])

    private func openEnds(logDirectory: String) throws(WorkerPoolError) -> Ends {
        let streams: StandardStreamFiles
        do {
            streams = try StandardStreamFiles(
                directory: "\(configuration.sandbox)/\(logDirectory)", rotation: configuration.logRotation)
        } catch {
            throw .sandbox("cannot open the worker's log files: \(error)")
        }
        var down: [Int32] = [-1, -1]
        var up: [Int32] = [-1, -1]
        let downCode = makeCloseOnExecPipe(&down)
        guard downCode == 0 else {
            streams.close()
            throw .launchFailed("pipe failed: \(errnoText(downCode))")
        }
        let upCode = makeCloseOnExecPipe(&up)
        guard upCode == 0 else {
            close(down[0])
            close(down[1])
            streams.close()
            throw .launchFailed("pipe failed: \(errnoText(upCode))")
        }
        return (streams, down, up)
    }

    private func spawn(
        _ ends: Ends, environment extra: [String: String], extraDescriptors: [(source: Int32, target: Int32)],
        cgroup: Cgroup?
    ) throws(WorkerPoolError) -> LaunchedWorker {
        let (streams, down, up) = ends
        var environment = configuration.environment
        environment["MESOS_SANDBOX"] = configuration.sandbox
        for (name, value) in extra { environment[name] = value }
        let argv0 = configuration.program.split(separator: "/").last.map(String.init) ?? configuration.program
        var request = SpawnRequest(
            executable: configuration.program, arguments: [argv0] + configuration.arguments,
            environment: environment.map { "\($0.key)=\($0.value)" }.sorted(),
            workingDirectory: configuration.sandbox,
            fileDescriptors: streams.mappings + [(down[0], 3), (up[1], 4)] + extraDescriptors)
        var joins = CgroupJoin()
        if let cgroup {
            do {
                joins = try cgroup.openSpawnJoin()
            } catch {
                for fd in down + up { close(fd) }
                throw .launchFailed("cannot open the worker's cgroup: \(error)")
            }
        }
        request.joinCgroups = joins
        let child: ChildProcess
        do {
            defer { joins.close() }
            child = try ChildProcess.spawn(request)
        } catch {
            for fd in down + up { close(fd) }
            throw .launchFailed("cannot start the worker program: \(error)")
        }
        close(down[0])
        close(up[1])
        return LaunchedWorker(child: child, fromWorker: up[0], toWorker: down[1], logs: streams)
    }
}
