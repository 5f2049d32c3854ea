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

    /// The endpoint as a URL (`http+unix://` with the socket path percent-encoded for a unix socket).
    public var url: String {
        switch transport {
        case .http: "http://\(hostAndPort)\(path)"
        case .https: "https://\(hostAndPort)\(path)"
        case .unixSocket(let socketPath):
            "http+unix://\(Self.percentEncode(socketPath))\(Self.percentEncode(path, keepSlashes: true))"
        }
    }

    public var description: String {
        switch transport {
        case .unixSocket(let socketPath): "unix:\(socketPath)\(path)"
        default: url
        }
    }

    private static func percentEncode(_ string: String, keepSlashes: Bool = false) -> String {
        var result = ""
        for byte in string.utf8 {
            let scalar = UnicodeScalar(byte)
            let unreserved =
                (byte >= 0x30 && byte <= 0x39) || (byte >= 0x41 && byte <= 0x5a) || (byte >= 0x61 && byte <= 0x7a)
                || "-._~".utf8.contains(byte) || (keepSlashes && "/()".utf8.contains(byte))
            if unreserved {
                result.unicodeScalars.append(scalar)
            } else {
                result += "%" + (byte < 16 ? "0" : "") + String(byte, radix: 16, uppercase: true)
            }
        }
        return result
    }
}
