/// One mounted cgroup hierarchy this process belongs to, and where its own cgroup lies in it.
public struct CgroupHierarchy: Sendable, Equatable {
    public enum Version: Sendable, Equatable {
        /// A v1 hierarchy with these controllers (`cpu,cpuacct` may share one).
        case v1(controllers: [String])
        /// The v2 unified hierarchy.
        case v2
    }

    public var version: Version
    /// Where it is mounted (`/sys/fs/cgroup/memory`).
    public var mountPoint: String
    /// The cgroup the mount shows at its mount point (`/` unless a container mounted a subtree).
    public var mountRoot: String
    /// This process's cgroup in the hierarchy, from /proc/self/cgroup (`/process_api/7d98…`).
    public var ownPath: String

    /// The directory of a cgroup given by its path in the hierarchy.
    public func directory(of path: String) -> String {
        var relative = Substring(path)
        if mountRoot != "/", relative.hasPrefix(mountRoot) { relative = relative.dropFirst(mountRoot.count) }
        let trimmed = relative.drop { $0 == "/" }
        // `String(trimmed)`: appending the Substring itself goes through the standard library's
        // generic `append(contentsOf:)`, whose first use scans every conformance record.
        return trimmed.isEmpty ? mountPoint : mountPoint + "/" + String(trimmed)
    }

    /// The path libcgroup names a cgroup by: relative to the mount point.
    func libcgroupName(of path: String) -> String {
        let directory = directory(of: path)
        return String(directory.dropFirst(mountPoint.count).drop { $0 == "/" })
    }

    public var controllers: [String] {
        if case .v1(let controllers) = version { return controllers }
        return []
    }

    /// The hierarchies of this process, from the texts of /proc/self/mountinfo and /proc/self/cgroup.
    /// v1 hierarchies without a kernel controller (`name=systemd`) are left out.
    ///
    /// Read as bytes: split into `Character`s (grapheme clusters) the two files took a starting
    /// executor 0.4 ms (Tests/Benchmarks/HISTORY.md).
    public static func parse(mountInfo: String, procCgroup: String) -> [CgroupHierarchy] {
        // /proc/self/cgroup: "4:memory:/path", "1:cpu,cpuacct:/path", "0::/path" (v2).
        var v1Paths: [String: String] = [:]
        var v2Path: String?
        for line in Array(procCgroup.utf8).split(separator: newline) {
            let fields = line.split(separator: colon, maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0].elementsEqual("0".utf8) && fields[1].isEmpty {
                v2Path = text(fields[2])
            } else {
                let path = text(fields[2])
                for controller in fields[1].split(separator: comma) { v1Paths[text(controller)] = path }
            }
        }
        // /proc/self/mountinfo: "id parent major:minor root mountpoint options [tags] - fstype source superoptions".
        var result: [CgroupHierarchy] = []
        var seenV2 = false
        for line in Array(mountInfo.utf8).split(separator: newline) {
            guard let dash = optionalFieldsEnd(line) else { continue }
            let left = line[..<dash].split(separator: space)
            let right = line[(dash + 3)...].split(separator: space)
            guard left.count >= 5, right.count >= 3 else { continue }
            let root = unescape(left[3])
            let mountPoint = unescape(left[4])
            switch text(right[0]) {
            case "cgroup":
                let controllers = right[2].split(separator: comma).map(text).filter(knownControllers.contains)
                guard let first = controllers.first, let path = v1Paths[first] else { continue }
                result.append(
                    CgroupHierarchy(
                        version: .v1(controllers: controllers), mountPoint: mountPoint, mountRoot: root,
                        ownPath: path))
            case "cgroup2":
                guard !seenV2, let path = v2Path else { continue }
                seenV2 = true
                result.append(CgroupHierarchy(version: .v2, mountPoint: mountPoint, mountRoot: root, ownPath: path))
            default:
                continue
            }
        }
        return result
    }

    private static let knownControllers: Set<String> = [
        "cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio", "perf_event", "net_prio",
        "hugetlb", "pids", "rdma", "misc",
    ]
    private static let newline = UInt8(ascii: "\n")
    private static let colon = UInt8(ascii: ":")
    private static let comma = UInt8(ascii: ",")
    private static let space = UInt8(ascii: " ")

    private static func text(_ bytes: ArraySlice<UInt8>) -> String { String(decoding: bytes, as: UTF8.self) }

    /// Where " - " (the end of a mountinfo line's optional fields) begins, if it does.
    private static func optionalFieldsEnd(_ line: ArraySlice<UInt8>) -> Int? {
        var index = line.startIndex
        while index + 2 < line.endIndex {
            if line[index] == space && line[index + 1] == UInt8(ascii: "-") && line[index + 2] == space { return index }
            index += 1
        }
        return nil
    }

    /// mountinfo escapes space, tab, newline and backslash as octal (`\040`).
    private static func unescape(_ field: ArraySlice<UInt8>) -> String {
        guard field.contains(UInt8(ascii: "\\")) else { return text(field) }
        var bytes: [UInt8] = []
        var rest = field
        while let byte = rest.first {
            if byte == UInt8(ascii: "\\"), rest.count >= 4,
                let value = UInt8(text(rest.dropFirst().prefix(3)), radix: 8)
            {
                bytes.append(value)
                rest = rest.dropFirst(4)
            } else {
                bytes.append(byte)
                rest = rest.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
