/// The rules an archive entry must pass before anything is written: pure functions, tested without I/O.
package enum ArchivePathPolicy {
    /// The entry name as a clean relative path ("a/b/c"), or why it is refused.
    /// Leading "./" and empty components are dropped; "..", absolute paths and NULs are refused.
    package static func relativePath(_ name: String) -> Result<String, Refusal> {
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
    /// never climb again after descending. Together with ``ExtractedLinks`` (no entry is created
    /// through a link, so `path` is where the link really sits) every link resolves inside the tree,
    /// whatever other links it passes through: none of them can lead out of it either.
    package static func checkSymlink(path: String, target: String) -> Refusal? {
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
    package static func hardlinkTarget(_ target: String) -> Result<String, Refusal> {
        switch relativePath(target) {
        case .success(let clean) where !clean.isEmpty: .success(clean)
        case .success: .failure(.init("hard link to the target directory itself"))
        case .failure(let refusal):
            .failure(.init("hard link to '\(target)' leaves the target directory (\(refusal.reason))"))
        }
    }

    /// The symbolic links an extraction has created so far, which every later entry is checked against:
    /// the kernel follows them, so a path the name policy accepts may still land elsewhere.
    package struct ExtractedLinks {
        /// Clean relative path of each link → its target.
        private var links: [String: String] = [:]
        /// How many links one resolution may follow (the kernel's own limit is 40).
        static let maxHops = 40

        package init() {}

        /// Refuses a clean relative `path` that goes through a link already extracted: creating it
        /// would write wherever that link points. The path itself may name a link (it replaces it).
        package func checkPath(_ path: String) -> Refusal? {
            linkOnPath(path).map { .init("it passes through the symbolic link '\($0)' extracted before it") }
        }

        /// The first proper prefix of `path` that is a link already extracted.
        private func linkOnPath(_ path: String) -> String? {
            guard !links.isEmpty else { return nil }
            var prefix = ""
            for part in path.split(separator: "/").dropLast() {
                prefix += prefix.isEmpty ? String(part) : "/" + part
                if links[prefix] != nil { return prefix }
            }
            return nil
        }

        /// Checks a symbolic link at `path` (clean, relative) to `target`: the static rules of
        /// ``ArchivePathPolicy/checkSymlink(path:target:)``, then the target resolved lexically from
        /// the link's directory, following the links already extracted; it must stay inside.
        package func checkSymlink(path: String, target: String) -> Refusal? {
            if let refusal = checkPath(path) { return refusal }
            if let refusal = ArchivePathPolicy.checkSymlink(path: path, target: target) { return refusal }
            var parent = path.split(separator: "/").map(String.init)
            parent.removeLast()
            switch resolve(target, from: parent) {
            case .success: return nil
            case .failure(let refusal): return refusal
            }
        }

        /// Checks a hard link's clean target: the entry it names must not be reached through a link.
        package func checkHardlinkTarget(_ target: String) -> Refusal? {
            linkOnPath(target).map {
                .init("its target '\(target)' passes through the symbolic link '\($0)' extracted before it")
            }
        }

        /// Remembers a link that was accepted and is about to be created.
        package mutating func record(path: String, target: String) {
            links[path] = target
        }

        /// Where `target`, read from the directory `parent` (components from the root), leads:
        /// the components of the resolved path, or why it leaves the tree.
        package func resolve(_ target: String, from parent: [String]) -> Result<[String], Refusal> {
            var resolved = parent
            var remaining = target.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
            remaining.reverse()
            var hops = 0
            while let part = remaining.popLast() {
                switch part {
                case ".": continue
                case "..":
                    guard resolved.popLast() != nil else {
                        return .failure(.init("link to '\(target)' leaves the target directory"))
                    }
                default:
                    resolved.append(part)
                    guard let next = links[resolved.joined(separator: "/")] else { continue }
                    hops += 1
                    if hops > Self.maxHops {
                        return .failure(.init("link to '\(target)' passes through too many links"))
                    }
                    if next.hasPrefix("/") {
                        return .failure(.init("link to '\(target)' leaves the target directory"))
                    }
                    resolved.removeLast()
                    remaining += next.split(separator: "/", omittingEmptySubsequences: true).map(String.init)
                        .reversed()
                }
            }
            return .success(resolved)
        }
    }

    package struct Refusal: Error, Equatable {
        package let reason: String
        package init(_ reason: String) { self.reason = reason }
    }
}
