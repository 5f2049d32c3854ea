import ProcessSupervision
import SystemSupport
#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Writes results above the size limit to files under `<sandbox>/results/`, so that status
/// updates and framework messages stay small. A result's file is always new: another task's or
/// mini-task's file of the same name (a mini-task id used again, or a task named `mini-<id>`) is
/// never written over, since its path has gone to the framework; the new one gets `.2`, `.3`, …
/// `results` is 0750 and its files 0640: a task of another user let through the sandbox does not
/// read other tasks' results (the agent, root, serves them to the framework).
struct LargeResults: Sendable {
    let sandbox: String
    let limit: Int

    enum Stored: Equatable {
        case inline([UInt8])
        case file(path: String, size: Int)
        case failed(String)
    }

    /// `name` is a task or mini-task id; it is made file-name safe. `results` is opened without
    /// following a link (one in its place would take results anywhere).
    func store(_ data: [UInt8], name: String) -> Stored {
        guard data.count > limit else { return .inline(data) }
        let directory = "\(sandbox)/results"
        if mkdir(directory, 0o750) != 0 && errno != EEXIST {
            return .failed("cannot create \(directory): \(errnoText(errno))")
        }
        let results = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard results >= 0 else {
            let why = errno == ENOTDIR || errno == ELOOP ? "it is not a directory (a link?)" : errnoText(errno)
            return .failed("cannot open \(directory): \(why)")
        }
        defer { close(results) }
        let base = StandardStreamFiles.safeName(name)
        var file = base
        var fd: Int32
        var copy = 1
        while true {
            fd = openat(results, file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o640)
            guard fd < 0 && errno == EEXIST else { break }
            copy += 1
            file = "\(base).\(copy)"
        }
        let path = "\(directory)/\(file)"
        guard fd >= 0 else { return .failed("cannot create \(path): \(errnoText(errno))") }
        defer { close(fd) }
        guard data.withUnsafeBytes({ writeAll(fd, $0) }) else {
            let why = "cannot write \(path): \(errnoText(errno))"
            // No part of a result is left to be taken for the whole of it (a full disk, say).
            unlinkat(results, file, 0)
            return .failed(why)
        }
        return .file(path: path, size: data.count)
    }

    enum Released: Equatable {
        case removed
        /// Removed before (a release sent twice) or never there.
        case gone
        case refused(String)
    }

    /// Removes the result file at `path`, a path this store gave out (`<sandbox>/results/<name>`),
    /// once the framework has read it. Nothing else is ever removed: a path outside `results`,
    /// with a `..`, a further `/` or a NUL (which would end it early) in its name, or naming
    /// anything but a regular file is refused.
    func release(_ path: String) -> Released {
        let directory = "\(sandbox)/results"
        let prefix = directory + "/"
        guard path.hasPrefix(prefix) else {
            return .refused("'\(path)' is not a result file of this executor (those are in \(directory))")
        }
        let name = String(path.dropFirst(prefix.utf8.count))
        guard !name.isEmpty, name != ".", name != "..", !name.utf8.contains(UInt8(ascii: "/")), !name.utf8.contains(0)
        else {
            return .refused("'\(path)' is not a result file of this executor (those are in \(directory))")
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else {
            return errno == ENOENT ? .gone : .refused("cannot open \(directory): \(errnoText(errno))")
        }
        defer { close(fd) }
        var status = stat()
        guard fstatat(fd, name, &status, AT_SYMLINK_NOFOLLOW) == 0 else {
            return errno == ENOENT ? .gone : .refused("cannot release '\(path)': \(errnoText(errno))")
        }
        guard status.st_mode & S_IFMT == S_IFREG else {
            return .refused("'\(path)' is not a result file of this executor (not a regular file)")
        }
        guard unlinkat(fd, name, 0) == 0 else {
            return errno == ENOENT ? .gone : .refused("cannot release '\(path)': \(errnoText(errno))")
        }
        return .removed
    }
}
