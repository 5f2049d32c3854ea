/// The rules an archive entry must pass before anything is written: pure functions, tested without I/O.
enum ArchivePathPolicy {
    /// The entry name as a clean relative path ("a/b/c"), or why it is refused.
    /// Leading "./" and empty components are dropped; "..", absolute paths and NULs are refused.
    static func relativePath(_ name: String) -> Result<String, Refusal> {
        if name.hasPrefix("/") { return .failure(.init("absolute path")) }
        if name.utf8.contains(0) { return .failure(.init("NUL in name")) }
        var parts: [Substring] = []
        for part in name.split(separator: "/", omittingEmptySubsequences: true) {
            if part == "." { continue }
            if part == ".." { return .failure(.init("'..' in path")) }
            parts.append(part)
        }
        return .success(parts.joined(separator: "/"))
    }

    /// Checks a symbolic link at `path` (clean, relative) pointing to `target`.
    ///
    /// Accepted targets are relative, climb with leading ".." at most as deep as the link sits, and
    /// never climb again after descending. Every link then resolves inside the tree, whatever other
    /// links it passes through, because no accepted link can lead out of the tree.
    static func checkSymlink(path: String, target: String) -> Refusal? {
        if target.isEmpty { return .init("empty link target") }
        if target.hasPrefix("/") { return .init("link to absolute path '\(target)' leaves the target directory") }
        let depth = path.split(separator: "/").count - 1
        var climbs = 0
        var descended = false
        for part in target.split(separator: "/", omittingEmptySubsequences: true) {
            switch part {
            case ".": continue
            case "..":
                if descended { return .init("link target '\(target)' climbs after descending") }
                climbs += 1
                if climbs > depth { return .init("link to '\(target)' leaves the target directory") }
            default: descended = true
            }
        }
        return nil
    }

    /// Checks a hard link's target, which names another entry of the same archive.
    static func hardlinkTarget(_ target: String) -> Result<String, Refusal> {
        switch relativePath(target) {
        case .success(let clean) where !clean.isEmpty: .success(clean)
        case .success: .failure(.init("hard link to the target directory itself"))
        case .failure(let refusal):
            .failure(.init("hard link to '\(target)' leaves the target directory (\(refusal.reason))"))
        }
    }

    struct Refusal: Error, Equatable {
        let reason: String
        init(_ reason: String) { self.reason = reason }
    }
}
