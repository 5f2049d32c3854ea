import CProcessSpawn

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// Giving memory the process no longer uses back to the system, for a long-lived process that
/// idles between bursts of work. Both are reclaims: nothing is lost, and what is used again
/// comes back (fresh heap pages, minor faults for code).
public enum ResidentMemory {
    /// This program's own file, from /proc/self/exe.
    public static var executablePath: String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Gives freed heap memory back to the system (glibc's `malloc_trim`; malloc keeps it for reuse
    /// otherwise, so a burst of work would leave its high-water mark in the RSS). It walks the heap:
    /// call it when a burst is over, not per operation.
    public static func releaseFreeHeap() {
        cps_release_free_heap()
    }

    /// One of glibc's malloc thresholds (see `heapThresholds(environment:)`).
    public struct HeapThreshold: Equatable, Sendable {
        public enum Kind: Equatable, Sendable {
            /// `M_MMAP_THRESHOLD`: blocks this large or larger are mapped on their own.
            case mapping
            /// `M_TRIM_THRESHOLD`: free memory beyond this at a heap's top goes back to the system.
            case trim
        }
        public let kind: Kind
        public let bytes: Int
    }

    /// Fixed malloc thresholds for a process that gives its free heap back when idle, for those the
    /// operator did not choose (`MALLOC_MMAP_THRESHOLD_`, `MALLOC_TRIM_THRESHOLD_`, or
    /// `glibc.malloc.mmap_threshold` and `glibc.malloc.trim_threshold` in `GLIBC_TUNABLES`).
    ///
    /// By default glibc raises both thresholds each time a block it had mapped on its own is freed
    /// (up to 32 and 64 MiB), and a heap arena of a thread other than the main one gives back the
    /// free memory at its top only when that exceeds the trim threshold: `malloc_trim` does not
    /// trim those tops. After a burst of mini-tasks (a table of a few hundred thousand calls is
    /// one such block) the tops of the event loop's and the task threads' arenas kept megabytes
    /// each for good. With the mapping threshold fixed at glibc's own upper bound (blocks below
    /// 32 MiB come from the heap, as they do once the default has risen) and the trim threshold
    /// at 2 MiB, no arena keeps more than 2 MiB free at its top.
    public static func heapThresholds(environment: [String: String]) -> [HeapThreshold] {
        let tunables = environment["GLIBC_TUNABLES"] ?? ""
        func chosen(_ variable: String, _ tunable: String) -> Bool {
            environment[variable] != nil || tunables.contains(tunable + "=")
        }
        var thresholds: [HeapThreshold] = []
        if !chosen("MALLOC_MMAP_THRESHOLD_", "glibc.malloc.mmap_threshold") {
            thresholds.append(HeapThreshold(kind: .mapping, bytes: 32 << 20))
        }
        if !chosen("MALLOC_TRIM_THRESHOLD_", "glibc.malloc.trim_threshold") {
            thresholds.append(HeapThreshold(kind: .trim, bytes: 2 << 20))
        }
        return thresholds
    }

    /// Sets `heapThresholds(environment:)` for this process's environment with `mallopt` (on
    /// glibc; elsewhere nothing). Call at start, before other threads. Returns the thresholds set.
    @discardableResult
    public static func fixHeapThresholds() -> [HeapThreshold] {
        var environment: [String: String] = [:]
        for name in ["GLIBC_TUNABLES", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"] {
            if let value = getenv(name) { environment[name] = String(cString: value) }
        }
        return heapThresholds(environment: environment).filter {
            cps_set_heap_threshold($0.kind == .trim ? 1 : 0, Int32($0.bytes)) == 1
        }
    }

    /// Unmaps our own program's relocation table, which the dynamic loader read once before `main`
    /// and nothing reads again (about 1.9 MB of the executor's RSS: it lies in its executable
    /// segment). Not a reclaim of anything in use: call it once start-up is over. Done by the first
    /// call; later ones return at once. Returns the bytes unmapped.
    @discardableResult
    public static func releaseRelocationTable() -> Int { relocationTableRelease }

    /// The table's release, run once (a static's lazy, thread-safe initialization).
    private static let relocationTableRelease = Int(cps_release_relocation_table())

    /// Gives back the whole pages of `length` bytes at `address` that are in memory and hold only
    /// zeros: for memory a library zeroed once and never filled. They read as zeros again, and a
    /// page is taken again only when written. The caller makes sure nothing writes the range
    /// meanwhile. Returns the bytes given back.
    @discardableResult
    public static func releaseZeroPages(at address: UnsafeMutableRawPointer, length: Int) -> Int {
        Int(cps_release_zero_pages(address, length))
    }

    /// Unmaps the pages of our own program's code (`madvise(MADV_DONTNEED)` on its read-only,
    /// executable mappings). Start-up and a burst of work run code scattered over the whole `.text`,
    /// and the kernel's fault-around maps up to 16 pages per fault, so about 12 MB of clean pages
    /// of the executor's own file stay in its RSS while it idles. Those mappings are never written,
    /// so nothing is lost: the pages stay in the page cache, and code that runs again comes back
    /// through minor faults. Writable and read-only-after-relocation segments are left alone.
    /// Returns the bytes unmapped.
    @discardableResult
    public static func releaseExecutableText() -> Int {
        guard let own = executablePath, let maps = fopen("/proc/self/maps", "r") else { return 0 }
        defer { fclose(maps) }
        var released = 0
        var line = [CChar](repeating: 0, count: 4096)
        while fgets(&line, Int32(line.count), maps) != nil {
            // "start-end perms offset dev inode   path"
            let text = String(decoding: line.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
            let fields = text.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "r-xp", fields[5].hasPrefix(own),
                fields[5].dropFirst(own.count).allSatisfy({ $0 == "\n" })
            else { continue }
            let bounds = fields[0].split(separator: "-")
            guard bounds.count == 2, let start = UInt(bounds[0], radix: 16), let end = UInt(bounds[1], radix: 16),
                let address = UnsafeMutableRawPointer(bitPattern: start)
            else { continue }
            if madvise(address, Int(end - start), MADV_DONTNEED) == 0 { released += Int(end - start) }
        }
        return released
    }
}
