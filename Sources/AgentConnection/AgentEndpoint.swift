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
