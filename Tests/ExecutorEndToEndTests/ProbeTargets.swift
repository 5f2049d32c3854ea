import Foundation
import LocalAgent
import MesosProto
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SystemSupport
import TestCertificates

/// What a check in an end-to-end test looks at, made healthy or unhealthy by the test itself (never
/// by time): a file for COMMAND, the answer of a loopback HTTP server, a listening TCP socket.
enum ProbeKind: String, CaseIterable, Sendable {
    case command = "COMMAND"
    case http = "HTTP"
    /// HTTP over TLS with a self-signed certificate (checks do not verify certificates, as Mesos's `curl -k`).
    case https = "HTTPS"
    case tcp = "TCP"

    /// The kinds a general check (`CheckInfo`) has: no HTTPS.
    static let checkKinds: [ProbeKind] = [.command, .http, .tcp]
}

final class ProbeTarget: Sendable {
    let kind: ProbeKind
    let sandbox: String
    /// HTTPS: the server's TLS context, a fresh self-signed certificate.
    private let tls: NIOSSLContext?
    /// HTTP: the status the server answers with.
    let httpStatus = LockedValue<UInt>(200)
    let listener = LockedValue<ListeningSocket?>(nil)
    let port = LockedValue<Int>(0)
    /// HTTP requests answered / TCP connections accepted.
    let served = LockedValue(0)

    private init(kind: ProbeKind, sandbox: String) async throws {
        self.kind = kind
        self.sandbox = sandbox
        tls = kind == .https ? try await SelfSignedCertificate(in: sandbox).serverContext() : nil
    }

    /// A target that starts unhealthy (no file, HTTP 503, nothing listening yet but a port reserved).
    static func make(_ kind: ProbeKind, sandbox: String) async throws -> ProbeTarget {
        let target = try await ProbeTarget(kind: kind, sandbox: sandbox)
        switch kind {
        case .command:
            break
        case .http, .https:
            target.httpStatus.withLock { $0 = 503 }
            try await target.listen()
        case .tcp:
            try await target.listen()
            try await target.stopListening()
        }
        return target
    }

    func setHealthy(_ healthy: Bool) async throws {
        switch kind {
        case .command:
            let path = sandbox + "/healthy"
            if healthy {
                _ = FileManager.default.createFile(atPath: path, contents: Data())
            } else {
                try? FileManager.default.removeItem(atPath: path)
            }
        case .http, .https:
            httpStatus.withLock { $0 = healthy ? 200 : 500 }
        case .tcp:
            if healthy { try await listen() } else { try await stopListening() }
        }
    }

    /// The health check; every attempt appends a line to `attempts` in the sandbox for COMMAND.
    func healthCheck(
        interval: Double = 0.1, failures: UInt32 = 3, grace: Double = 0, delay: Double = 0
    ) -> Mesos_V1_HealthCheck {
        var check = Mesos_V1_HealthCheck()
        check.delaySeconds = delay
        check.intervalSeconds = interval
        check.timeoutSeconds = 60
        check.consecutiveFailures = failures
        check.gracePeriodSeconds = grace
        switch kind {
        case .command:
            check.type = .command
            check.command.value = "echo >> attempts; test -e healthy"
        case .http, .https:
            check.type = .http
            check.http.port = UInt32(port.withLock { $0 })
            check.http.path = "/health"
            if kind == .https { check.http.scheme = "https" }
        case .tcp:
            check.type = .tcp
            check.tcp.port = UInt32(port.withLock { $0 })
        }
        return check
    }

    /// How many attempts reached the target so far (a TCP target counts only while listening).
    func attempts() -> Int {
        switch kind {
        case .command:
            let text = (try? String(contentsOfFile: sandbox + "/attempts", encoding: .utf8)) ?? ""
            return text.utf8.count
        case .http, .https, .tcp:
            return served.withLock { $0 }
        }
    }

    func check(interval: Double = 0.1) -> Mesos_V1_CheckInfo {
        var check = Mesos_V1_CheckInfo()
        check.delaySeconds = 0
        check.intervalSeconds = interval
        check.timeoutSeconds = 60
        switch kind {
        case .command:
            check.type = .command
            check.command.command.value = "echo >> attempts; test -e healthy"
        case .http, .https:
            check.type = .http
            check.http.port = UInt32(port.withLock { $0 })
            check.http.path = "/health"
        case .tcp:
            check.type = .tcp
            check.tcp.port = UInt32(port.withLock { $0 })
        }
        return check
    }

    /// The `check_status` a healthy / unhealthy target gives.
    func expectedStatus(healthy: Bool) -> String {
        switch kind {
        case .command: "exit_code=\(healthy ? 0 : 1)"
        case .http, .https: "status_code=\(healthy ? 200 : 500)"
        case .tcp: "succeeded=\(healthy)"
        }
    }

    private func listen() async throws {
        let requested = port.withLock { $0 }
        let status = self
        let tls = self.tls
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                if status.kind == .tcp { status.served.withLock { $0 += 1 } }
                guard status.kind == .http || status.kind == .https else {
                    return channel.eventLoop.makeSucceededVoidFuture()
                }
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(StatusHandler(target: status))
                }
            }
        // Our own socket: made unhealthy, a TCP target must stop listening even while a task the
        // executor (in this process) is starting holds a copy of it, and must listen again on its port.
        let descriptor = try ListeningSocket.makeTCP(host: "127.0.0.1", port: requested)
        let server = try await bootstrap.withBoundSocket(descriptor).get()
        port.withLock { $0 = server.localAddress?.port ?? 0 }
        listener.withLock { $0 = ListeningSocket(channel: server, descriptor: descriptor) }
    }

    private func stopListening() async throws {
        let open = listener.withLock { value in
            defer { value = nil }
            return value
        }
        try await open?.close().get()
    }

    func close() async {
        try? await stopListening()
    }
}

private final class StatusHandler: ChannelInboundHandler, Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    let target: ProbeTarget

    init(target: ProbeTarget) { self.target = target }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        target.served.withLock { $0 += 1 }
        let code = target.httpStatus.withLock { $0 }
        var headers = HTTPHeaders()
        headers.add(name: "content-length", value: "0")
        let head = HTTPResponseHead(version: .http1_1, status: .init(statusCode: Int(code)), headers: headers)
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}

extension Mesos_V1_CheckStatusInfo {
    /// `exit_code=0`, `status_code=200`, `succeeded=true`, or `empty`.
    var shortText: String {
        switch type {
        case .command: command.hasExitCode ? "exit_code=\(command.exitCode)" : "empty"
        case .http: http.hasStatusCode ? "status_code=\(http.statusCode)" : "empty"
        case .tcp: tcp.hasSucceeded ? "succeeded=\(tcp.succeeded)" : "empty"
        case .unknown: "unknown"
        }
    }
}
