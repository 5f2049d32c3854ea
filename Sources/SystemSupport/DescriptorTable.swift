#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// This process's descriptor table. The kernel grows it when a descriptor number beyond it is
/// first used, and in a process of more than one thread every growth first waits for an RCU grace
/// period (`expand_fdtable`; 8–30 ms on this project's VM, Tests/Benchmarks/HISTORY.md). Grown once
/// while only the main thread runs, it never has to grow again: a table never shrinks.
public enum DescriptorTable {
    /// Grows the table to hold every descriptor number below `end` (below the soft limit at most),
    /// by placing a descriptor at the top and closing it.
    public static func reserve(below end: Int32) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        let top = Int32(min(UInt64(end), UInt64(limit.rlim_cur))) - 1
        guard top > 2 else { return }
        let probe = open("/dev/null", O_RDONLY | O_CLOEXEC)
        guard probe >= 0 else { return }
        let placed = fcntl(probe, F_DUPFD_CLOEXEC, top)
        if placed >= 0 { close(placed) }
        close(probe)
    }
}
