import CProcessSpawn
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// A user a child can run as: the ids the kernel checks (user, primary group, supplementary
/// groups), looked up by name in the system's user database, as `su` and Mesos's launcher do.
public struct UserIdentity: Sendable, Hashable, CustomStringConvertible {
    public let name: String
    public let uid: UInt32
    public let gid: UInt32
    /// Every group the user is in (`getgrouplist`: its primary group and those naming it).
    public let groups: [UInt32]

    public init(name: String, uid: UInt32, gid: UInt32, groups: [UInt32]) {
        self.name = name
        self.uid = uid
        self.gid = gid
        self.groups = groups
    }

    public var description: String { "\(name) (uid \(uid), gid \(gid))" }

    /// The user named `name`, or nil when the user database has no such user. Throws when the
    /// database cannot be read.
    public static func lookUp(_ name: String) throws(ProcessError) -> UserIdentity? {
        guard !name.isEmpty, !name.utf8.contains(0) else { return nil }
        guard let entry = try entry({ getpwnam_r(name, $0, $1, $2, $3) }) else { return nil }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        while getgrouplist(name, entry.gid, &groups, &count) < 0 {
            guard count > Int32(groups.count) else {
                throw .systemCall("listing the groups of user '\(name)'", errno: EINVAL)
            }
            groups = [gid_t](repeating: 0, count: Int(count))
        }
        return UserIdentity(name: name, uid: entry.uid, gid: entry.gid, groups: Array(groups.prefix(Int(count))))
    }

    /// The user this process runs as (its effective user id), and its name if the user database
    /// has one.
    public static func current() -> (uid: UInt32, name: String?) {
        let uid = geteuid()
        return (uid, (try? entry({ getpwuid_r(uid, $0, $1, $2, $3) }))??.name)
    }

    /// The user database's entry that `find` (`getpwnam_r`, `getpwuid_r`) fills, its buffer grown
    /// while too small; nil when there is none.
    private static func entry(
        _ find: (
            UnsafeMutablePointer<passwd>, UnsafeMutablePointer<CChar>, Int,
            UnsafeMutablePointer<UnsafeMutablePointer<passwd>?>
        ) -> Int32
    ) throws(ProcessError) -> (name: String, uid: UInt32, gid: UInt32)? {
        var record = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        var rc: Int32
        repeat {
            rc = find(&record, &buffer, buffer.count, &result)
            if rc == ERANGE { buffer = [CChar](repeating: 0, count: buffer.count * 2) }
        } while rc == ERANGE && buffer.count <= 1 << 20
        if rc != 0 && rc != ENOENT && rc != ESRCH { throw .systemCall("reading the user database", errno: rc) }
        guard rc == 0, result != nil else { return nil }
        return (String(cString: record.pw_name), record.pw_uid, record.pw_gid)
    }
}

extension UserIdentity {
    /// Opens `path` as this user would (`open(2)`'s `flags` and `mode`): for the `open` alone, the
    /// calling thread takes the user's groups and filesystem ids, so the kernel checks the user's
    /// permissions on every directory on the way and on the file itself. Needs root. Returns the
    /// descriptor, or -1 with `errno` set.
    public func open(_ path: String, flags: Int32, mode: UInt32 = 0) -> Int32 {
        withIdentity(self) { cps_open_as(path, flags, mode, $0) }
    }

    /// Makes this user the owner (and its primary group the group) of the directory at `path` and
    /// of everything under it. Nothing is reached through a symbolic link, even one put in place
    /// while this runs: directories are opened one inside the other without following links
    /// (`openat`, `O_NOFOLLOW`), and entries change owner through their directory (a link changes
    /// owner itself). A regular file with other hard links is left as it is: its other names lie
    /// outside the tree (a fetch cache's copy, say), and they must not change owner with it.
    public func takeOwnership(ofDirectory path: String) throws(ProcessError) {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .systemCall("opening \(path)", errno: errno) }
        defer { close(fd) }
        try takeOwnership(directory: fd, path: path)
    }

    /// A directory changes owner after everything in it: until then only its owner (the executor)
    /// can change its entries, so none is swapped for a link between being looked at and changed.
    private func takeOwnership(directory fd: Int32, path: String) throws(ProcessError) {
        guard let entries = directoryEntries(fd: fd) else { throw .systemCall("listing \(path)", errno: errno) }
        for entry in entries {
            let name = entry.name
            var status = stat()
            guard entry.withCName({ fstatat(fd, $0, &status, AT_SYMLINK_NOFOLLOW) }) == 0 else {
                if errno == ENOENT { continue }
                throw .systemCall("lstat \(path)/\(name)", errno: errno)
            }
            let type = status.st_mode & S_IFMT
            if type == S_IFDIR {
                let child = entry.withCName { openat(fd, $0, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) }
                // Gone, or no longer a directory since it was looked at: nothing to follow.
                guard child >= 0 else {
                    if errno == ENOENT || errno == ELOOP || errno == ENOTDIR { continue }
                    throw .systemCall("opening \(path)/\(name)", errno: errno)
                }
                defer { close(child) }
                try takeOwnership(directory: child, path: path + "/" + name)
            } else if type == S_IFREG && status.st_nlink > 1 {
                continue
            } else if entry.withCName({ fchownat(fd, $0, uid, gid, AT_SYMLINK_NOFOLLOW) }) != 0 && errno != ENOENT {
                throw .systemCall("chown \(path)/\(name) to \(self.name)", errno: errno)
            }
        }
        if fchown(fd, uid, gid) != 0 { throw .systemCall("chown \(path) to \(name)", errno: errno) }
    }
}
