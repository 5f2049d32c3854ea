/// Asks running jobs to stop early but gracefully (Ctrl-C): the current wait ends, the executor
/// gets SHUTDOWN from the still-running agent and its grace period, then SIGTERM and SIGKILL.
public final class Interruption: Sendable {
    let alarm = Alarm()

    /// A fresh, not yet triggered interruption.
    public init() {}

    /// Stops the running job (and keeps later ones from starting).
    public func interrupt() { alarm.ring() }

    /// Whether ``interrupt()`` was called.
    public var isInterrupted: Bool { alarm.isRung }
}
