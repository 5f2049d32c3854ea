/// One published entry of the shared cache, as the `cache` subcommand lists it.
public struct CacheEntry: Sendable, Hashable {
    /// The entry's directory name: `<sha256 of the content>.<variant>`.
    public let name: String
    /// The URI that first brought it in.
    public let uri: String
    /// The sha256 of the fetched bytes (verified against the URI's `#sha256=` when it had one).
    public let sha256: String
    /// Bytes on disk (extracted size for archives).
    public let bytes: Int64
    /// Last use, seconds since the epoch.
    public let lastUsed: Int64
    /// True while some executor (in any process) holds it.
    public let inUse: Bool
    /// "tree" for an extracted archive, "file" for a file kept as it is.
    public let kind: String
}

/// What a prune or clear removed.
public struct PruneReport: Sendable, Hashable {
    public var removedEntries: [String] = []
    public var freedBytes: Int64 = 0
    /// Entries kept because an executor uses them.
    public var skippedInUse: [String] = []
    /// Left-over staging directories and dangling index files removed.
    public var removedLeftovers: Int = 0
}

/// Key=value lines stored next to each entry.
struct EntryMetadata: Sendable, Equatable {
    var uri: String
    var sha256: String
    var bytes: Int64
    var kind: String
    /// For a tree: its single top directory (the package root); for a file: its file name.
    var name: String

    func encoded() -> String {
        "uri=\(uri)\nsha256=\(sha256)\nbytes=\(bytes)\nkind=\(kind)\nname=\(name)\n"
    }

    init(uri: String, sha256: String, bytes: Int64, kind: String, name: String) {
        self.uri = uri
        self.sha256 = sha256
        self.bytes = bytes
        self.kind = kind
        self.name = name
    }

    init?(_ text: String) {
        var fields: [Substring: Substring] = [:]
        for line in text.split(separator: "\n") {
            guard let equals = line.firstIndex(of: "=") else { continue }
            fields[line[..<equals]] = line[line.index(after: equals)...]
        }
        guard let uri = fields["uri"], let sha = fields["sha256"], let bytes = fields["bytes"].flatMap({ Int64($0) }),
            let kind = fields["kind"]
        else { return nil }
        self.init(
            uri: String(uri), sha256: String(sha), bytes: bytes, kind: String(kind), name: String(fields["name"] ?? ""))
    }
}
