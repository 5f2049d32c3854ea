import Synchronization
import SystemSupport

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// The control files of one cgroup, kept open once used: a task's cgroup is read and written a
/// dozen times (joins, limits, usage, `cgroup.events`, `cgroup.kill`), and opening a file deep in
/// a cgroup hierarchy costs a path walk each time. Reads are `pread` at 0 (the kernel generates a
/// control file's text afresh for each read from its start), writes are one `write(2)`.
///
/// Descriptors come from one budget for the whole executor, so many cgroups cannot exhaust its
/// descriptor limit: past the budget a file is opened and closed per use, as before. Kept
/// descriptors are numbered above the executor's others (`region`), because a spawned child's own
/// descriptor table is only what lies below its highest pipe (CProcessSpawn): ~260 cgroup files
/// copied into every child and closed again before its exec cost a spawn about 70 µs.
final class CgroupControlFiles: Sendable {
    private struct Key: Hashable {
        enum Use: Hashable {
            case reading, writing, directory

            var flags: Int32 {
                switch self {
                case .reading: O_RDONLY
                case .writing: O_WRONLY
                case .directory: O_RDONLY | O_DIRECTORY
                }
            }
        }

        let path: String
        let use: Use
    }

    /// The kept descriptors, and whether ``closeAll()`` was called (nothing is kept after it).
    /// Every use of a kept descriptor happens under this lock, so that ``closeAll()`` cannot close
    /// one in use: its number could be reused by then, by any file of the process, and a `write`
    /// meant for `cgroup.kill` or a join meant for `cgroup.procs` would reach that file instead.
    private let kept = LockedValue<(open: [Key: Int32], closed: Bool)>(([:], false))

    /// Descriptors kept open by every cgroup together: a quarter of the soft limit, at most 2,048.
    static let budget: Int = {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 128 }
        return Int(min(limit.rlim_cur / 4, 2048))
    }()
    private static let keptCount = Atomic<Int>(0)

    /// Above every kept descriptor's number (unless other descriptors fill the region): the size
    /// the executor's descriptor table is given at start (`DescriptorTable.reserve`).
    static var regionEnd: Int32 { region + Int32(budget) }

    /// The lowest number a kept descriptor gets: the budget's worth of numbers just below the soft
    /// limit, or below 4,096 when the limit is higher (the kernel sizes a descriptor table by its
    /// highest number).
    static let region: Int32 = {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 0 }
        return Int32(max(0, Int(min(limit.rlim_cur, 4096)) - budget))
    }()

    init() {}

    deinit { closeAll() }

    /// The whole file as text, or nil if it cannot be read.
    func read(_ path: String) -> String? {
        let singleRecord = CgroupFiles.isSingleRecord(path)
        // A kept descriptor's read stands, unreadable (nil) included; without one, the path is read.
        return withDescriptor(Key(path: path, use: .reading)) { fd in
            CgroupFiles.read(descriptor: fd, singleRecord: singleRecord)
        } ?? CgroupFiles.read(path)
    }

    /// Writes `value` in one write(2); returns errno or 0.
    @discardableResult
    func write(_ path: String, _ value: String) -> Int32 {
        withDescriptor(Key(path: path, use: .writing)) { fd in CgroupFiles.write(descriptor: fd, value) }
            ?? CgroupFiles.write(path, value)
    }

    /// A new descriptor for writing `path` (a `tasks` or `cgroup.procs` file) or, with `directory`,
    /// of the directory `path`, for a spawn to join; the caller closes it.
    func duplicate(_ path: String, directory: Bool = false) -> Int32 {
        let key = Key(path: path, use: directory ? .directory : .writing)
        return withDescriptor(key) { fd in fcntl(fd, F_DUPFD_CLOEXEC, 0) }
            ?? Glibc.open(path, key.use.flags | O_CLOEXEC)
    }

    /// Closes every kept descriptor (the cgroup is being removed), once no use of one is under way;
    /// later uses open and close.
    func closeAll() {
        let descriptors = kept.withLock { kept in
            kept.closed = true
            defer { kept.open = [:] }
            return Array(kept.open.values)
        }
        for fd in descriptors { close(fd) }
        Self.keptCount.subtract(descriptors.count, ordering: .relaxed)
    }

    /// Runs `body` with the kept descriptor of `key` (opened now if it is not yet), under the lock;
    /// nil without running it when none is kept (all closed, or the budget spent).
    private func withDescriptor<Result: Sendable>(_ key: Key, _ body: (Int32) -> Result) -> Result? {
        kept.withLock { kept -> Result? in
            guard !kept.closed else { return nil }
            if let fd = kept.open[key] { return body(fd) }
            guard Self.keptCount.add(1, ordering: .relaxed).newValue <= Self.budget else {
                Self.keptCount.subtract(1, ordering: .relaxed)
                return nil
            }
            let opened = Glibc.open(key.path, key.use.flags | O_CLOEXEC)
            guard opened >= 0 else {
                Self.keptCount.subtract(1, ordering: .relaxed)
                return nil
            }
            // Into the region (anywhere free at or above it); where it is full, the number it got.
            var fd = opened
            let moved = fcntl(opened, F_DUPFD_CLOEXEC, Self.region)
            if moved >= 0 {
                close(opened)
                fd = moved
            }
            kept.open[key] = fd
            return body(fd)
        }
    }
}
