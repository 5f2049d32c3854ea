import HTTPGet
import MesosProto
import NIOCore
import NIOHTTP1
import NIOPosix
import ProcessSupervision

#if canImport(Glibc)
    import Glibc
#endif

/// Probes for real: COMMAND in the task's sandbox and environment (its own process group, killed
/// whole on timeout), HTTP(S) GET on loopback (redirects followed, certificates not verified, as
/// Mesos's `curl -L -k`), TCP connect on loopback.
public struct LiveProber: Prober {
    let context: CheckContext

    public init(context: CheckContext) {
        self.context = context
    }

    public func probe(_ probe: CheckDefinition.Probe, timeout: Duration?) async -> ProbeResult {
        switch probe {
        case .command(let command):
            return await Self.command(command, context: context, timeout: timeout)
        case .http(let scheme, let port, let path, let ipv6):
            let url = HTTPURL(
                secure: scheme == "https", host: ipv6 ? "::1" : "127.0.0.1", port: port,
                target: path.isEmpty ? "/" : path)
            return await bounded(timeout, "GET \(url)") { await Self.get(url) }
        case .tcp(let port, let ipv6):
            let host = ipv6 ? "::1" : "127.0.0.1"
            return await bounded(timeout, "TCP connect to port \(port)") {
                await Self.connect(host: host, port: port, timeout: timeout)
            }
        }
    }

    /// Like `curl -L -k`: redirects followed, certificates not verified.
    private static func get(_ url: HTTPURL) async -> ProbeResult {
        do {
            let options = HTTPGetOptions(maxRedirects: 10, verifiesCertificates: false)
            return try await withHTTPGet(url, options: options) { response, body in
                for try await _ in body {}
                return .http(statusCode: UInt32(response.status.code))
            }
        } catch {
            return .error("GET \(url) failed: \(error)")
        }
    }

    private static func connect(host: String, port: Int, timeout: Duration?) async -> ProbeResult {
        let seconds = timeout.map { max(1, $0.components.seconds + 1) } ?? 3600
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(seconds))
        do {
            // An address: connected to as it is, not through NIO's resolver (getaddrinfo on a
            // libdispatch thread) every interval.
            let channel = try await bootstrap.connect(to: SocketAddress(ipAddress: host, port: port)).get()
            try? await channel.close()
            return .tcp(succeeded: true)
        } catch {
            // Like Mesos's mesos-tcp-connect: a failed connect is a result, not an error.
            return .tcp(succeeded: false)
        }
    }

    static func command(_ command: Mesos_V1_CommandInfo, context: CheckContext, timeout: Duration?) async
        -> ProbeResult
    {
        if let unavailable = context.unavailable { return .error("the check command cannot run: \(unavailable)") }
        var environment = context.environment
        if environment["PATH"] == nil { environment["PATH"] = "/usr/local/bin:/usr/bin:/bin" }
        for variable in command.environment.variables {
            environment[variable.name] =
                variable.type == .secret ? String(decoding: variable.secret.value.data, as: UTF8.self) : variable.value
        }
        let executable = command.shell ? "/bin/sh" : command.value
        let argv =
            command.shell
            ? ["sh", "-c", command.value] : (command.arguments.isEmpty ? [command.value] : command.arguments)
        let devNull = open("/dev/null", O_RDONLY | O_CLOEXEC)
        defer { if devNull >= 0 { close(devNull) } }
        var descriptors: [(source: Int32, target: Int32)] = [(2, 1), (2, 2)]
        if devNull >= 0 { descriptors.append((devNull, 0)) }
        let child: ChildProcess
        let joins = context.joinCgroups()
        defer { joins.close() }
        do {
            child = try ChildProcess.spawn(
                SpawnRequest(
                    executable: executable, arguments: argv,
                    environment: environment.map { "\($0.key)=\($0.value)" }.sorted(),
                    workingDirectory: context.workingDirectory, fileDescriptors: descriptors, joinCgroups: joins,
                    user: context.user))
        } catch {
            return .error("the check command could not be started: \(error)")
        }
        let termination: Termination? = await withTaskGroup(of: Termination?.self) { group in
            group.addTask { await child.wait() }
            group.addTask {
                if let timeout {
                    _ = try? await Task.sleep(for: timeout)
                } else {
                    while !Task.isCancelled { _ = try? await Task.sleep(for: .seconds(3600)) }
                }
                return nil
            }
            if let first = await group.next(), let first {
                group.cancelAll()
                return first
            }
            // Timed out, or checking stopped: the whole group goes, then the child is reaped.
            child.signalGroup(SIGKILL)
            _ = await group.next()
            return nil
        }
        // Whatever the check left behind in its group goes with it.
        child.signalGroup(SIGKILL)
        switch termination {
        case .exited(let code): return .command(exitCode: code)
        case .signaled(let signal): return .error("the check command was \(Termination.signaled(signal))")
        case nil: return .error("the check command timed out after \(timeout?.shortText ?? "-")")
        }
    }
}
