/// Drives a ``CheckScheduler`` with a clock and a prober until the task stops being checked.
public enum Checker {
    /// Runs the check until `perform` returns false (the task is no longer running), a health check
    /// kills the task, or the calling task is cancelled. Reports and kills go to `perform` in order.
    public static func run<C: Clock>(
        _ definition: CheckDefinition, prober: some Prober, clock: C,
        perform: @Sendable (CheckScheduler.Action) async -> Bool
    ) async where C.Duration == Duration {
        var machine = CheckScheduler(definition)
        let start = clock.now
        var pending = machine.start()
        while !pending.isEmpty, !Task.isCancelled {
            let action = pending.removeFirst()
            switch action {
            case .wait(let until):
                do {
                    try await clock.sleep(until: start.advanced(by: until), tolerance: nil)
                } catch {
                    return
                }
                pending += machine.timerFired(at: start.duration(to: clock.now))
            case .probe(let timeout):
                let result = await prober.probe(definition.probe, timeout: timeout)
                if Task.isCancelled { return }
                pending += machine.probeEnded(result, at: start.duration(to: clock.now))
            case .reportHealth, .reportCheck, .killTask:
                if await !perform(action) { return }
            }
        }
    }
}
