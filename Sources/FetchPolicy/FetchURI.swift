/// One thing to fetch: a URI plus the Mesos `CommandInfo.URI` flags.
///
/// A sha256 is given as a URI fragment, `https://host/spark.tgz#sha256=<64 hex digits>`. The fragment is
/// never sent to the server; when present the payload must match it or the fetch fails and nothing is
/// installed. Query strings are kept for the request and ignored when naming or typing the file.
public struct FetchURI: Sendable, Hashable, CustomStringConvertible {
    /// How the bytes are obtained.
    public enum Scheme: String, Sendable, Hashable {
        case http, https, file
        /// hdfs, s3, s3a, s3n and other schemes handed to `hadoop fs -cat`.
        case hadoop
    }

    /// The URI as configured (fragment included), used in messages.
    public let value: String
    /// The URI without its fragment: what is requested.
    public let location: String
    public let scheme: Scheme
    /// The expected sha256 in lower-case hex, from `#sha256=`.
    public let sha256: String?
    /// Extract archives (Mesos default true). Ignored when `executable` is set.
    public var extract: Bool
    /// Make the fetched file executable (and do not extract it).
    public var executable: Bool
    /// Rename the fetched file (a relative path inside the sandbox).
    public var outputFile: String?
    /// Use the shared cache: nil means the fetcher's default (cache on when a cache is configured).
    public var cache: Bool?

    /// Parses `value`. Plain paths are `file` URIs.
    public init(
        _ value: String, extract: Bool = true, executable: Bool = false, outputFile: String? = nil, cache: Bool? = nil
    ) throws(FetchError) {
        let trimmed = value.trimmingWhitespace()
        guard !trimmed.isEmpty else { throw .invalidURI(value, "the URI is empty") }
        // A NUL would end the path, program argument or file name made from it early.
        guard !trimmed.utf8.contains(0) else { throw .invalidURI(value, "the URI holds a NUL character") }
        var location = trimmed
        var sha256: String?
        if let hash = trimmed.firstIndex(of: "#") {
            location = String(trimmed[..<hash])
            let fragment = trimmed[trimmed.index(after: hash)...]
            for part in fragment.split(separator: "&") where part.lowercased().hasPrefix("sha256=") {
                let hex = part.dropFirst("sha256=".count).lowercased()
                guard hex.count == 64, hex.allSatisfy(\.isHexDigit) else {
                    throw .invalidURI(value, "'#sha256=' needs 64 hexadecimal digits, got '\(hex)'")
                }
                sha256 = String(hex)
            }
        }
        let scheme: Scheme
        if let colon = location.firstRange(of: "://") {
            switch location[..<colon.lowerBound].lowercased() {
            case "http": scheme = .http
            case "https": scheme = .https
            case "file": scheme = .file
            case "ftp", "ftps": throw .invalidURI(value, "ftp is not supported; use http(s), file, hdfs or s3")
            case "": throw .invalidURI(value, "missing scheme before '://'")
            default: scheme = .hadoop
            }
        } else {
            scheme = .file
        }
        if scheme == .http || scheme == .https, location.utf8.contains(where: { $0 <= 0x20 || $0 == 0x7F }) {
            throw .invalidURI(value, "a URL holds no space or control character: percent-encode it (%20)")
        }
        if let outputFile,
            outputFile.hasPrefix("/") || outputFile.split(separator: "/").contains("..") || outputFile.utf8.contains(0)
        {
            throw .invalidURI(value, "output_file '\(outputFile)' must be a relative path without '..'")
        }
        self.value = value
        self.location = location
        self.scheme = scheme
        self.sha256 = sha256
        self.extract = extract
        self.executable = executable
        self.outputFile = outputFile
        self.cache = cache
        if scheme == .file, localPath.utf8.contains(0) {
            throw .invalidURI(value, "the path holds an encoded NUL character (%00)")
        }
    }

    /// The URI as configured, a password in it shown as `***` (what logs and errors print).
    public var description: String { Self.withoutPassword(value) }

    /// `text` with the password of a `scheme://user:password@host…` URL replaced by `***`.
    package static func withoutPassword(_ text: String) -> String {
        guard let separator = text.firstRange(of: "://") else { return text }
        let authority = text[separator.upperBound...].prefix { $0 != "/" && $0 != "?" && $0 != "#" }
        guard let at = authority.lastIndex(of: "@"), let colon = authority[..<at].firstIndex(of: ":") else {
            return text
        }
        return String(text[..<authority.index(after: colon)]) + "***" + String(text[at...])
    }

    /// The local path of a `file` URI (query string removed).
    package var localPath: String {
        var path = location
        if path.lowercased().hasPrefix("file://") { path = String(path.dropFirst("file://".count)) }
        return path.removingPercentEncoding()
    }

    /// The last path component, without query string: the name a file gets in the sandbox, always
    /// one name in the directory it is fetched into. Percent-encoding is decoded (`x%20y.jar` is
    /// `x y.jar`) unless that would make something else of it (`..%2F..%2Fetc` is kept as it is:
    /// decoded, it would name a file outside that directory); `.`, `..` and nothing are `download`.
    package var fileName: String {
        var path = Substring(location)
        if let scheme = path.firstRange(of: "://") {
            path = path[scheme.upperBound...]
            path = path.firstIndex(of: "/").map { path[$0...] } ?? ""
        }
        if let query = path.firstIndex(where: { $0 == "?" }) { path = path[..<query] }
        let raw = path.split(separator: "/").last.map(String.init) ?? ""
        func isOneName(_ name: String) -> Bool {
            !name.isEmpty && name != "." && name != ".." && !name.utf8.contains(UInt8(ascii: "/"))
                && !name.utf8.contains(0)
        }
        let decoded = raw.removingPercentEncoding()
        if isOneName(decoded) { return decoded }
        return isOneName(raw) ? raw : "download"
    }

    /// The name used to pick a payload type and to name a non-extracted file.
    package var effectiveName: String {
        outputFile.map { $0.split(separator: "/").last.map(String.init) ?? $0 } ?? fileName
    }

    /// What to do with the bytes, decided from flags and name; `.sniff` defers to the content.
    package var payloadPlan: PayloadPlan {
        if executable || !extract { return .file }
        return PayloadPlan.forName(effectiveName)
    }
}

/// How the bytes of one URI become files.
package enum PayloadPlan: Sendable, Hashable {
    /// An archive libarchive reads (tar, compressed tar, zip).
    case archive
    /// A single gzip-compressed file, decompressed to its name without `.gz`.
    case gunzip
    /// Copied as it is.
    case file
    /// No telling name: decided from the first bytes.
    case sniff

    static func forName(_ name: String) -> PayloadPlan {
        let lower = name.lowercased()
        for suffix in [".tar", ".tgz", ".tar.gz", ".tbz2", ".tbz", ".tar.bz2", ".txz", ".tar.xz", ".zip"]
        where lower.hasSuffix(suffix) {
            return .archive
        }
        if lower.hasSuffix(".gz") { return .gunzip }
        // A name with an extension we do not extract (.jar, .py, .conf …) is a file, as in Mesos.
        if let dot = lower.lastIndex(of: "."), dot != lower.startIndex,
            lower.distance(from: dot, to: lower.endIndex) <= 6
        {
            return .file
        }
        return .sniff
    }

    /// Decides from the first bytes of a payload whose name told nothing.
    package static func sniff(_ head: [UInt8]) -> PayloadPlan {
        func starts(_ magic: [UInt8]) -> Bool { head.count >= magic.count && Array(head.prefix(magic.count)) == magic }
        if starts([0x1F, 0x8B]) || starts([0x42, 0x5A, 0x68]) || starts([0xFD, 0x37, 0x7A, 0x58, 0x5A, 0x00])
            || starts([0x50, 0x4B, 0x03, 0x04])
        {
            return .archive
        }
        if head.count >= 262, Array(head[257..<262]) == Array("ustar".utf8) { return .archive }
        return .file
    }
}

extension String {
    package func trimmingWhitespace() -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !$0.properties.isWhitespace }),
            let last = scalars.lastIndex(where: { !$0.properties.isWhitespace })
        else { return "" }
        return String(scalars[first...last])
    }

    func removingPercentEncoding() -> String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
