import Glibc

/// Where the agent's executor API lives and how to reach it.
public struct AgentEndpoint: Sendable, Hashable, CustomStringConvertible {
    public enum Transport: Sendable, Hashable {
        case http
        case https
        /// A unix domain socket at this path (`MESOS_DOMAIN_SOCKET`).
        case unixSocket(String)
    }

    /// `ip:port` from `MESOS_AGENT_ENDPOINT` (ignored for unix sockets).
    public var hostAndPort: String
    public var transport: Transport
    /// The request path. The agent answers on `/api/v1/executor`; over a domain socket only
    /// `/slave(1)/api/v1/executor` is routed.
    public var path: String

    public init(hostAndPort: String, transport: Transport = .http, path: String? = nil) {
        self.hostAndPort = hostAndPort
        self.transport = transport
        if let path {
            self.path = path
        } else if case .unixSocket = transport {
            self.path = "/slave(1)/api/v1/executor"
        } else {
            self.path = "/api/v1/executor"
        }
    }

    /// The endpoint as one writes it: its URL, or `unix:` the socket's path and the request path.
    public var description: String {
        switch transport {
        case .http: "http://\(hostAndPort)\(path)"
        case .https: "https://\(hostAndPort)\(path)"
        case .unixSocket(let socketPath): "unix:\(socketPath)\(path)"
        }
    }
}

/// An agent's IP address and port, as the socket calls take them.
enum AgentIPAddress {
    case v4(sockaddr_in)
    case v6(sockaddr_in6)
}

extension AgentEndpoint {
    /// The address the endpoint names (`10.0.0.5:5051`, `[::1]:5051`); nil for a host name (or a
    /// port out of range), which must be resolved.
    var ipAddress: AgentIPAddress? {
        let (host, port) = hostAndPortParts
        guard let port = UInt16(exactly: port) else { return nil }
        var v4 = sockaddr_in()
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
            return .v4(v4)
        }
        var v6 = sockaddr_in6()
        if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
            return .v6(v6)
        }
        return nil
    }
}
