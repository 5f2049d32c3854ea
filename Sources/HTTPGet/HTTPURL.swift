/// An http(s) URL taken apart for a request: scheme, host, port and request target.
public struct HTTPURL: Sendable, Hashable, CustomStringConvertible {
    /// https: the connection is TLS.
    public var secure: Bool
    /// The host name or address, IPv6 addresses without their brackets.
    public var host: String
    public var port: Int
    /// The path and query, starting with `/`.
    public var target: String
    /// `user:password` from the URL, sent as basic authentication.
    public var credentials: String?

    public init(secure: Bool, host: String, port: Int? = nil, target: String = "/") {
        self.secure = secure
        self.host = host
        self.port = port ?? (secure ? 443 : 80)
        self.target = target.hasPrefix("/") ? target : "/" + target
    }

    /// Parses `http://host[:port][/path][?query]` (or https); a fragment is dropped. Nil for
    /// anything else.
    public init?(_ text: String) {
        guard let separator = text.firstRange(of: "://") else { return nil }
        let secure: Bool
        switch text[..<separator.lowerBound].lowercased() {
        case "http": secure = false
        case "https": secure = true
        default: return nil
        }
        var rest = text[separator.upperBound...]
        if let hash = rest.firstIndex(of: "#") { rest = rest[..<hash] }
        let authorityEnd = rest.firstIndex { $0 == "/" || $0 == "?" } ?? rest.endIndex
        var authority = rest[..<authorityEnd]
        let target = rest[authorityEnd...]
        var credentials: String?
        if let at = authority.lastIndex(of: "@") {
            credentials = String(authority[..<at])
            authority = authority[authority.index(after: at)...]
        }
        var host: Substring
        var port: Substring?
        if authority.hasPrefix("[") {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { return nil }
                port = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            port = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        guard !host.isEmpty, !host.contains(where: { $0 == " " || $0 == "/" }) else { return nil }
        var number: Int?
        if let port, !port.isEmpty {
            guard let value = Int(port), (1...65_535).contains(value) else { return nil }
            number = value
        }
        self.init(secure: secure, host: String(host), port: number, target: String(target))
        self.credentials = credentials
    }

    /// Where a redirect's `Location` points from here: an absolute URL, `//host/path`, an absolute
    /// path or a path relative to this one's directory. Nil when it is none of them.
    public func resolving(_ location: String) -> HTTPURL? {
        if location.contains("://") { return HTTPURL(location) }
        if location.hasPrefix("//") { return HTTPURL((secure ? "https:" : "http:") + location) }
        var resolved = self
        resolved.credentials = nil
        var location = Substring(location)
        if let hash = location.firstIndex(of: "#") { location = location[..<hash] }
        if location.hasPrefix("/") {
            resolved.target = String(location)
        } else {
            let path = target.prefix { $0 != "?" }
            if location.hasPrefix("?") {
                resolved.target = String(path) + location
            } else {
                resolved.target = String(path[...(path.lastIndex(of: "/") ?? path.startIndex)]) + location
            }
        }
        resolved.target = Self.removingDotSegments(resolved.target)
        return resolved
    }

    /// `target` with its path's `.` and `..` segments resolved (RFC 3986, 5.2.4); the query is kept.
    static func removingDotSegments(_ target: String) -> String {
        let query = target.firstIndex(of: "?").map { target[$0...] } ?? ""
        let path = target.prefix { $0 != "?" }
        var output: [Substring] = []
        let segments = path.split(separator: "/", omittingEmptySubsequences: false).dropFirst()
        for (index, segment) in segments.enumerated() {
            let last = index == segments.count - 1
            switch segment {
            case ".":
                if last { output.append("") }
            case "..":
                if !output.isEmpty { output.removeLast() }
                if last { output.append("") }
            default:
                output.append(segment)
            }
        }
        return "/" + output.joined(separator: "/") + query
    }

    /// The `Host` header: the host (IPv6 in brackets) and the port unless it is the scheme's own.
    var hostHeader: String {
        let name = host.contains(":") ? "[\(host)]" : host
        return port == (secure ? 443 : 80) ? name : "\(name):\(port)"
    }

    /// The host is an address, not a name (no TLS server name is sent for it).
    var hostIsAddress: Bool {
        host.contains(":") || host.allSatisfy { $0.isNumber || $0 == "." }
    }

    public var description: String {
        "\(secure ? "https" : "http")://\(hostHeader)\(target)"
    }
}
