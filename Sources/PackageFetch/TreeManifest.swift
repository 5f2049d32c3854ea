import ProcessSupervision
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The directories, files and symbolic links of an extracted tree, recorded once when it enters the
/// cache so that a cache hit rebuilds the tree in a sandbox with mkdir/link/symlink only: no readdir,
/// no stat, no bytes copied.
struct TreeManifest: Sendable, Equatable {
    enum Kind: UInt8, Sendable {
        case directory = 0x64  // "d"
        case file = 0x66  // "f"
        case symlink = 0x6C  // "l"
    }

    struct Item: Sendable, Equatable {
        var kind: Kind
        /// Relative to the tree's root; parents come before their contents.
        var path: String
        var target: String = ""
    }

    var items: [Item] = []
    /// Bytes of regular files.
    var bytes: Int64 = 0

    /// The single top-level directory (spark-3.5.3-bin-hadoop3), if the tree has exactly one entry
    /// at its top and that entry is a directory.
    var singleTopDirectory: String? {
        let top = topLevelItems
        guard top.count == 1, top[0].kind == .directory else { return nil }
        return top[0].path
    }

    /// The entries at the tree's top (no "/" in their path).
    var topLevelItems: [Item] { items.filter { !$0.path.utf8.contains(UInt8(ascii: "/")) } }

    /// Walks `root` (not following links).
    static func scan(_ root: String) -> Result<TreeManifest, FileSystemFailure> {
        var manifest = TreeManifest()
        var stack = [""]
        while let relative = stack.popLast() {
            let directory = relative.isEmpty ? root : root + "/" + relative
            guard let entries = directoryEntries(atPath: directory) else {
                return .failure(.init("cannot list", directory))
            }
            var children: [String] = []
            for entry in entries {
                let name = entry.name
                let path = relative.isEmpty ? name : relative + "/" + name
                var info = stat()
                guard lstat(root + "/" + path, &info) == 0 else {
                    return .failure(.init("cannot stat", root + "/" + path))
                }
                switch info.st_mode & S_IFMT {
                case S_IFDIR:
                    manifest.items.append(Item(kind: .directory, path: path))
                    children.append(path)
                case S_IFLNK:
                    var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
                    let count = readlink(root + "/" + path, &buffer, buffer.count - 1)
                    let target =
                        count > 0
                        ? String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self) : ""
                    manifest.items.append(Item(kind: .symlink, path: path, target: target))
                default:
                    manifest.items.append(Item(kind: .file, path: path))
                    manifest.bytes += Int64(info.st_size)
                }
            }
            stack.append(contentsOf: children.reversed())
        }
        return .success(manifest)
    }

    /// Rebuilds the tree at `destination` from the one at `source`: directories are created, files
    /// hard-linked (copied when the two are on different filesystems), links recreated. Existing
    /// files in the way are replaced; existing directories are merged into. Each top-level directory
    /// in `linked` becomes instead one symbolic link to its place in `source` (replacing a link there).
    func materialize(from source: String, into destination: String, linking linked: Set<String> = [])
        -> FileSystemFailure?
    {
        if let failure = makeDirectories(destination) { return failure }
        for name in linked.sorted() {
            if let failure = Self.symlink(source + "/" + name, at: destination + "/" + name) { return failure }
        }
        for item in items {
            if !linked.isEmpty, linked.contains(String(item.path.prefix { $0 != "/" })) { continue }
            let target = destination + "/" + item.path
            switch item.kind {
            case .directory:
                if let failure = Self.makeDirectory(target) { return failure }
            case .file:
                if let failure = Self.link(source + "/" + item.path, target) { return failure }
            case .symlink:
                if let failure = Self.symlink(item.target, at: target) { return failure }
            }
        }
        return nil
    }

    /// The top-level directories that ``materialize(from:into:linking:)`` can put into `destination`
    /// as one symbolic link each: those with nothing in their place, or only a symbolic link (left by an
    /// earlier fetch). A directory already there is merged into instead.
    func linkableTopDirectories(in destination: String) -> Set<String> {
        var linkable = Set<String>()
        for item in topLevelItems where item.kind == .directory && Self.isFreeForLink(destination + "/" + item.path) {
            linkable.insert(item.path)
        }
        return linkable
    }

    /// Whether a symbolic link may be put at `path`: nothing is there, or only a symbolic link.
    static func isFreeForLink(_ path: String) -> Bool {
        var info = stat()
        return lstat(path, &info) != 0 ? errno == ENOENT : info.st_mode & S_IFMT == S_IFLNK
    }

    /// True when every top-level directory is in `linked`: the sandbox then holds only links to the
    /// tree's directories, and its top-level files.
    func linksEveryDirectory(_ linked: Set<String>) -> Bool {
        topLevelItems.allSatisfy { $0.kind != .directory || linked.contains($0.path) }
    }

    /// Bytes of the top-level regular files of the tree at `root`.
    func topLevelFileBytes(root: String) -> Int64 {
        var total: Int64 = 0
        for item in topLevelItems where item.kind == .file {
            var info = stat()
            if stat(root + "/" + item.path, &info) == 0 { total += Int64(info.st_size) }
        }
        return total
    }

    /// Makes the directory at `path`, or accepts one there: never a link or anything else in its
    /// place, which what is put into the directory would go through (a link left by an earlier
    /// fetch into the read-only cache, or one the agent's fetcher extracted, pointing anywhere).
    static func makeDirectory(_ path: String) -> FileSystemFailure? {
        if mkdir(path, 0o755) == 0 { return nil }
        guard errno == EEXIST else { return .init("cannot create", path) }
        var info = stat()
        guard lstat(path, &info) == 0 else { return .init("cannot create", path) }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            let what = info.st_mode & S_IFMT == S_IFLNK ? "a link" : "a file that is not a directory"
            return FileSystemFailure(description: "cannot create the directory '\(path)': \(what) is in its place")
        }
        return nil
    }

    /// Makes the directories of `relative` (a path without `..`) under `base`, none of them
    /// through a link (``makeDirectory(_:)``); returns the first that could not be made.
    static func makeDirectoriesWithoutLinks(_ relative: Substring, under base: String) -> FileSystemFailure? {
        var path = base
        for component in relative.split(separator: "/") where component != "." {
            path += "/" + component
            if let failure = makeDirectory(path) { return failure }
        }
        return nil
    }

    /// Creates the symbolic link `target` → `destination`, replacing a file or link in its place.
    static func symlink(_ destination: String, at target: String) -> FileSystemFailure? {
        if Glibc.symlink(destination, target) == 0 { return nil }
        if errno == EEXIST, unlink(target) == 0, Glibc.symlink(destination, target) == 0 { return nil }
        return .init("cannot create link", target)
    }

    /// Hard-links `source` to `target`, replacing what is there; copies across filesystems.
    static func link(_ source: String, _ target: String) -> FileSystemFailure? {
        if Glibc.link(source, target) == 0 { return nil }
        if errno == EEXIST, unlink(target) == 0, Glibc.link(source, target) == 0 { return nil }
        if errno == EXDEV || errno == EPERM || errno == EMLINK { return copy(source, target) }
        return .init("cannot link", target)
    }

    private static func copy(_ source: String, _ target: String) -> FileSystemFailure? {
        let input = open(source, O_RDONLY | O_CLOEXEC)
        guard input >= 0 else { return .init("cannot open", source) }
        defer { close(input) }
        var info = stat()
        fstat(input, &info)
        let output = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, info.st_mode & 0o7777)
        guard output >= 0 else { return .init("cannot create", target) }
        defer { close(output) }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let count = read(input, &buffer, buffer.count)
            if count == 0 { return nil }
            guard count > 0,
                buffer.withUnsafeBytes({ writeAll(output, UnsafeRawBufferPointer(rebasing: $0[0..<count])) })
            else { return .init("cannot copy to", target) }
        }
    }

    /// Takes write permission off every file and directory, so a process in a sandbox cannot change
    /// the cache through its links: not a file's bytes through a hard link, not a directory's
    /// entries through a symbolic link (root is not stopped).
    func makeReadOnly(root: String) {
        for item in items where item.kind != .symlink {
            var info = stat()
            let path = root + "/" + item.path
            if lstat(path, &info) == 0, info.st_mode & 0o222 != 0 { chmod(path, info.st_mode & 0o7555) }
        }
    }

    /// True when some top-level directory at `root` can still be written by its owner (an entry
    /// published before directories were made read-only).
    func hasWritableTopDirectory(root: String) -> Bool {
        topLevelItems.contains { item in
            guard item.kind == .directory else { return false }
            var info = stat()
            return lstat(root + "/" + item.path, &info) == 0 && info.st_mode & 0o200 != 0
        }
    }

    // MARK: Encoding: records of NUL-terminated fields, "<kind>\0<path>\0<target>\0".

    func encoded() -> [UInt8] {
        var bytes: [UInt8] = []
        for item in items {
            bytes.append(item.kind.rawValue)
            bytes.append(0)
            bytes += Array(item.path.utf8) + [0] + Array(item.target.utf8) + [0]
        }
        return bytes
    }

    static func decode(_ bytes: [UInt8], totalBytes: Int64) -> TreeManifest? {
        var manifest = TreeManifest(bytes: totalBytes)
        let fields = bytes.split(separator: 0, omittingEmptySubsequences: false)
        var index = 0
        while index + 2 < fields.count {
            guard fields[index].count == 1, let kind = Kind(rawValue: fields[index].first!) else { return nil }
            let path = String(decoding: fields[index + 1], as: UTF8.self)
            let target = String(decoding: fields[index + 2], as: UTF8.self)
            manifest.items.append(Item(kind: kind, path: path, target: target))
            index += 3
        }
        return manifest
    }
}

/// A failed filesystem call, with the path and errno text.
struct FileSystemFailure: Error, CustomStringConvertible {
    let description: String
    init(_ what: String, _ path: String, code: Int32 = errno) {
        description = "\(what) '\(path)': \(errnoText(code))"
    }
    init(description: String) {
        self.description = description
    }
}

/// mkdir -p (``SystemSupport/makeDirectories(atPath:)``), as a failure naming the path.
func makeDirectories(_ path: String) -> FileSystemFailure? {
    SystemSupport.makeDirectories(atPath: path).map { FileSystemFailure("cannot create", $0.path, code: $0.errno) }
}

/// rm -rf that also clears read-only directories left by an archive, and never follows a link,
/// even one put in place while it runs: each directory is opened without following links
/// (`O_NOFOLLOW`) and its entries are removed through it (`unlinkat`), so a directory swapped for
/// a link meanwhile is removed as the link, not walked into.
func removeTree(_ path: String) {
    guard let fd = openDirectoryToEmpty(AT_FDCWD, path) else {
        if errno == ENOTDIR || errno == ELOOP { unlink(path) }
        return
    }
    removeContents(of: fd)
    close(fd)
    rmdir(path)
}

private func removeContents(of directory: Int32) {
    for entry in directoryEntries(fd: directory) ?? [] {
        // A directory's `unlinkat` fails with EISDIR: no look at an entry's type before.
        if entry.withCName({ unlinkat(directory, $0, 0) }) == 0 || errno != EISDIR { continue }
        guard let child = entry.withCName({ openDirectoryToEmpty(directory, $0) }) else { continue }
        removeContents(of: child)
        close(child)
        _ = entry.withCName { unlinkat(directory, $0, AT_REMOVEDIR) }
    }
}

/// Opens the directory `name` names in `parent` without following a link, and lets its owner
/// list and change it (an archive may have made it read-only, or closed it altogether); nil with
/// `errno` set when it cannot be opened.
private func openDirectoryToEmpty(_ parent: Int32, _ name: UnsafePointer<CChar>) -> Int32? {
    let flags = O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC
    var fd = openat(parent, name, flags)
    if fd < 0 && errno == EACCES {
        // Closed to its owner (`d---------`): its mode is changed through a handle on the
        // directory itself (`O_PATH`, which needs no permission on it; glibc's name for it without
        // _GNU_SOURCE is `__O_PATH`), never through its name.
        let handle = openat(parent, name, __O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard handle >= 0 else { return nil }
        defer { close(handle) }
        guard chmod("/proc/self/fd/\(handle)", 0o700) == 0 else { return nil }
        fd = openat(handle, ".", flags)
    }
    guard fd >= 0 else { return nil }
    var status = stat()
    if fstat(fd, &status) == 0, status.st_mode & 0o300 != 0o300 { fchmod(fd, (status.st_mode & 0o7777) | 0o700) }
    return fd
}
