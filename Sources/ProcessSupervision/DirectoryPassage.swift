import CProcessSpawn

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

extension UserIdentity {
    /// Lets this user, and no other, pass through the directory at `path` (search it, `x`, to
    /// reach a name it knows; not list it): a POSIX ACL entry `user:<uid>:--x` is added to the
    /// directory's access ACL, with the mask it needs, and the mode's owner, group and other bits
    /// mean what they meant. The directory is opened without following a link. Returns false,
    /// having changed nothing, where its file system keeps no POSIX ACLs (`EOPNOTSUPP`).
    public func grantPassage(through path: String) throws(ProcessError) -> Bool {
        let fd = Glibc.open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw .systemCall("opening \(path)", errno: errno) }
        defer { close(fd) }
        var status = stat()
        guard fstat(fd, &status) == 0 else { throw .systemCall("fstat \(path)", errno: errno) }
        do {
            var acl =
                try AccessControlList.read(fd, describing: "reading the ACL of \(path)")
                ?? AccessControlList(mode: status.st_mode)
            guard acl.grantSearch(toUser: uid) else { return true }
            try acl.write(fd, describing: "giving user \(name) passage through \(path) (an ACL entry)")
            return true
        } catch let error where error.errno == EOPNOTSUPP {
            return false
        }
    }
}

/// A POSIX access ACL as Linux keeps it in the `system.posix_acl_access` extended attribute: a
/// version (2), then entries of a tag, permission bits (`rwx` as 4, 2, 1) and an id, each field
/// little-endian, sorted by tag and then id.
struct AccessControlList: Equatable {
    struct Entry: Equatable {
        var tag: UInt16
        var permissions: UInt16
        var id: UInt32
    }

    enum Tag {
        static let userObject: UInt16 = 0x01
        static let user: UInt16 = 0x02
        static let groupObject: UInt16 = 0x04
        static let group: UInt16 = 0x08
        static let mask: UInt16 = 0x10
        static let other: UInt16 = 0x20
    }

    static let attribute = "system.posix_acl_access"
    static let version: UInt32 = 2
    static let undefinedID = UInt32.max
    static let search: UInt16 = 1

    private(set) var entries: [Entry]

    /// The ACL a mode alone stands for (owner, group and others).
    init(mode: mode_t) {
        entries = [
            Entry(tag: Tag.userObject, permissions: UInt16((mode >> 6) & 7), id: Self.undefinedID),
            Entry(tag: Tag.groupObject, permissions: UInt16((mode >> 3) & 7), id: Self.undefinedID),
            Entry(tag: Tag.other, permissions: UInt16(mode & 7), id: Self.undefinedID),
        ]
    }

    /// Reads the attribute's bytes; nil when they are not an ACL of this version.
    init?(bytes: [UInt8]) {
        func little<T: FixedWidthInteger>(_ offset: Int, _: T.Type) -> T {
            (0..<MemoryLayout<T>.size).reduce(T.zero) { $0 | T(bytes[offset + $1]) << ($1 * 8) }
        }
        guard bytes.count >= 4, (bytes.count - 4) % 8 == 0, little(0, UInt32.self) == Self.version else {
            return nil
        }
        entries = stride(from: 4, to: bytes.count, by: 8).map { offset in
            Entry(
                tag: little(offset, UInt16.self), permissions: little(offset + 2, UInt16.self),
                id: little(offset + 4, UInt32.self))
        }
    }

    var bytes: [UInt8] {
        func little<T: FixedWidthInteger>(_ value: T) -> [UInt8] {
            (0..<MemoryLayout<T>.size).map { UInt8(truncatingIfNeeded: value >> ($0 * 8)) }
        }
        return little(Self.version) + entries.flatMap { little($0.tag) + little($0.permissions) + little($0.id) }
    }

    /// Adds search (`x`) for user `uid`, and to the mask, which bounds every named entry and the
    /// owning group (made, when there was none, from what those already had). False when the user
    /// could pass already.
    mutating func grantSearch(toUser uid: UInt32) -> Bool {
        let mask = entries.firstIndex { $0.tag == Tag.mask }
        let named = entries.firstIndex { $0.tag == Tag.user && $0.id == uid }
        if let named, entries[named].permissions & Self.search != 0,
            mask.map({ entries[$0].permissions & Self.search != 0 }) ?? true
        {
            return false
        }
        if let named {
            entries[named].permissions |= Self.search
        } else {
            entries.append(Entry(tag: Tag.user, permissions: Self.search, id: uid))
        }
        if let mask {
            entries[mask].permissions |= Self.search
        } else {
            let groupClass = entries.filter { [Tag.user, Tag.groupObject, Tag.group].contains($0.tag) }
            entries.append(
                Entry(
                    tag: Tag.mask, permissions: groupClass.reduce(0) { $0 | $1.permissions }, id: Self.undefinedID))
        }
        entries.sort { ($0.tag, $0.id) < ($1.tag, $1.id) }
        return true
    }

    /// The ACL of the file open at `fd`, nil when it has none beyond its mode; throws `EOPNOTSUPP`
    /// where the file system keeps none. `describing` names the read in an error.
    static func read(_ fd: Int32, describing: String) throws(ProcessError) -> AccessControlList? {
        var buffer = [UInt8](repeating: 0, count: 4 + 8 * 64)
        while true {
            let count = fgetxattr(fd, attribute, &buffer, buffer.count)
            if count >= 0 {
                guard let acl = AccessControlList(bytes: Array(buffer[..<count])) else {
                    throw .systemCall(describing, errno: EINVAL)
                }
                return acl
            }
            switch errno {
            case ENODATA: return nil
            case ERANGE: buffer = [UInt8](repeating: 0, count: buffer.count * 4)
            default: throw .systemCall(describing, errno: errno)
            }
        }
    }

    /// Writes the ACL to the file open at `fd`. `describing` names the write in an error.
    func write(_ fd: Int32, describing: String) throws(ProcessError) {
        let bytes = self.bytes
        guard fsetxattr(fd, Self.attribute, bytes, bytes.count, 0) == 0 else {
            throw .systemCall(describing, errno: errno)
        }
    }
}
