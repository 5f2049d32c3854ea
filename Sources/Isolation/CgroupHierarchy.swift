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
        return trimmed.isEmpty ? mountPoint : mountPoint + "/" + trimmed
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
    public static func parse(mountInfo: String, procCgroup: String) -> [CgroupHierarchy] {
        // /proc/self/cgroup: "4:memory:/path", "1:cpu,cpuacct:/path", "0::/path" (v2).
        var v1Paths: [String: String] = [:]
        var v2Path: String?
        for line in procCgroup.split(separator: "\n") {
            let fields = line.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
            guard fields.count == 3 else { continue }
            if fields[0] == "0" && fields[1].isEmpty {
                v2Path = String(fields[2])
            } else {
                for controller in fields[1].split(separator: ",") { v1Paths[String(controller)] = String(fields[2]) }
            }
        }
        // /proc/self/mountinfo: "id parent major:minor root mountpoint options [tags] - fstype source superoptions".
        var result: [CgroupHierarchy] = []
        var seenV2 = false
        for line in mountInfo.split(separator: "\n") {
            let halves = line.split(separator: " - ", maxSplits: 1)
            guard halves.count == 2 else { continue }
            let left = halves[0].split(separator: " ")
            let right = halves[1].split(separator: " ")
            guard left.count >= 5, right.count >= 3 else { continue }
            let root = unescape(left[3])
            let mountPoint = unescape(left[4])
            switch right[0] {
            case "cgroup":
                let known = ["cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "net_cls", "blkio",
                    "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc"]
                let controllers = right[2].split(separator: ",").map(String.init).filter { known.contains($0) }
                guard let first = controllers.first, let path = v1Paths[first] else { continue }
                result.append(
                    CgroupHierarchy(version: .v1(controllers: controllers), mountPoint: mountPoint, mountRoot: root,
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

    /// mountinfo escapes space, tab, newline and backslash as octal.
    private static func unescape(_ field: Substring) -> String {
        guard field.contains("\\") else { return String(field) }
        var bytes: [UInt8] = []
        var utf8 = Array(field.utf8)[...]
        while let byte = utf8.first {
            if byte == UInt8(ascii: "\\"), utf8.count >= 4,
                let value = UInt8(String(decoding: utf8.dropFirst().prefix(3), as: UTF8.self), radix: 8)
            {
                bytes.append(value)
                utf8 = utf8.dropFirst(4)
            } else {
                bytes.append(byte)
                utf8 = utf8.dropFirst()
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
