#if canImport(Glibc)
    import Glibc
#endif

/// The address of the executor's container, which Mesos's default executor gives its tasks as
/// `MESOS_CONTAINER_IP`: the address libprocess took for itself there, `LIBPROCESS_ADVERTISE_IP`,
/// else `LIBPROCESS_IP` (the agent sets it to the container's address on a CNI network, or passes
/// its own on), else the address of the host's name. Without either variable this executor takes
/// the address its traffic to the agent leaves from (the route the kernel picks towards
/// `MESOS_AGENT_ENDPOINT`: the container's own address on a container network, the host's on the
/// host's), rather than the host name's, which Debian maps to 127.0.1.1.
public enum ContainerAddress {
    /// The address, or nil when nothing gives one (no variable, and the agent's endpoint is no IP
    /// address or has no route).
    public static func find(
        environment: [String: String], agentHostAndPort: String?,
        routeSource: (String, UInt16) -> String? = ContainerAddress.routeSource
    ) -> String? {
        for name in ["LIBPROCESS_ADVERTISE_IP", "LIBPROCESS_IP"] {
            if let value = environment[name], isUsable(value) { return value }
        }
        guard let agentHostAndPort, let (host, port) = split(agentHostAndPort), isAddress(host) else { return nil }
        return routeSource(host, port)
    }

    /// `ip:port` or `[ipv6]:port`.
    static func split(_ hostAndPort: String) -> (String, UInt16)? {
        let host: Substring
        let port: Substring
        if hostAndPort.hasPrefix("[") {
            guard let close = hostAndPort.firstIndex(of: "]") else { return nil }
            host = hostAndPort[hostAndPort.index(after: hostAndPort.startIndex)..<close]
            let rest = hostAndPort[hostAndPort.index(after: close)...]
            guard rest.hasPrefix(":") else { return nil }
            port = rest.dropFirst()
        } else {
            guard let colon = hostAndPort.lastIndex(of: ":") else { return nil }
            host = hostAndPort[..<colon]
            port = hostAndPort[hostAndPort.index(after: colon)...]
        }
        guard let number = UInt16(port) else { return nil }
        return (String(host), number)
    }

    /// An IPv4 or IPv6 address that names one host (not 0.0.0.0 or ::, which libprocess binds to
    /// when told to listen everywhere).
    static func isUsable(_ value: String) -> Bool {
        isAddress(value) && value != "0.0.0.0" && value != "::"
    }

    static func isAddress(_ value: String) -> Bool {
        var v4 = in_addr()
        var v6 = in6_addr()
        return inet_pton(AF_INET, value, &v4) == 1 || inet_pton(AF_INET6, value, &v6) == 1
    }

    /// The source address of the kernel's route to `host`: a datagram socket connected there
    /// (which sends nothing) and asked its own address.
    public static func routeSource(_ host: String, _ port: UInt16) -> String? {
        var v4 = sockaddr_in()
        var v6 = sockaddr_in6()
        let family: Int32
        if inet_pton(AF_INET, host, &v4.sin_addr) == 1 {
            family = AF_INET
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = port.bigEndian
        } else if inet_pton(AF_INET6, host, &v6.sin6_addr) == 1 {
            family = AF_INET6
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = port.bigEndian
        } else {
            return nil
        }
        let fd = socket(family, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let connected =
            family == AF_INET
            ? withUnsafePointer(to: &v4) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            : withUnsafePointer(to: &v6) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size))
                }
            }
        guard connected == 0 else { return nil }
        var local = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &local) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard named == 0 else { return nil }
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        let written: UnsafePointer<CChar>? = withUnsafePointer(to: &local) { storage in
            if family == AF_INET {
                return storage.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { address in
                    var raw = address.pointee.sin_addr
                    return inet_ntop(AF_INET, &raw, &text, socklen_t(text.count))
                }
            }
            return storage.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { address in
                var raw = address.pointee.sin6_addr
                return inet_ntop(AF_INET6, &raw, &text, socklen_t(text.count))
            }
        }
        guard written != nil else { return nil }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
