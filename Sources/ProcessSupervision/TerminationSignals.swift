import CProcessSpawn

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#endif

/// SIGTERM and SIGINT for a program that shuts down gracefully on them: blocked in every thread from
/// the start of `main` (``block()``), so that one arriving while the program starts waits for the
/// watch rather than killing it, and read from a signalfd on the reaper's thread (``watch(_:)``),
/// so that watching them costs no thread of its own. Children spawned through ``ChildProcess``
/// start with them unblocked.
public enum TerminationSignals {
    /// Blocks SIGTERM and SIGINT in the calling thread and in every thread started after it: call
    /// it first in `main`, before any thread starts.
    public static func block() {
        _ = cps_block_termination_signals()
    }

    /// Runs `handler` with the signal's number, on the reaper's thread, for each SIGTERM or SIGINT
    /// from now on (and for one that came since ``block()``). False where no signalfd can be had:
    /// the caller then watches them another way.
    public static func watch(_ handler: @escaping @Sendable (Int32) -> Void) -> Bool {
        let fd = cps_termination_signalfd()
        guard fd >= 0 else { return false }
        let watching = ProcessReaper.shared.watch(fd) {
            while true {
                let signal = cps_read_signal(fd)
                guard signal > 0 else { return }
                handler(signal)
            }
        }
        if !watching { close(fd) }
        return watching
    }
}
