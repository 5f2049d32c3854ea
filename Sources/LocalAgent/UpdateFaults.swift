/// Faults the agent injects into UPDATE calls, one draw per call from a seeded generator, so a run
/// is repeatable: a share is answered 503 (as while recovering) and a share has its connection
/// dropped without an answer (as when the agent dies mid-request). Neither stores the update, so
/// the executor must send it again; every other call is served normally.
public struct UpdateFaults: Sendable, Hashable {
    /// The share of UPDATE calls answered 503, 0…1.
    public var unavailable: Double
    /// The share of UPDATE calls whose connection is closed without an answer, 0…1.
    public var dropped: Double
    /// Seeds the draws.
    public var seed: UInt64

    public init(unavailable: Double, dropped: Double, seed: UInt64 = 0x5EED) {
        self.unavailable = min(1, max(0, unavailable))
        self.dropped = min(1 - self.unavailable, max(0, dropped))
        self.seed = seed
    }

    /// What happens to one UPDATE call.
    enum Fault: Sendable, Hashable {
        case unavailable, dropped
    }

    /// The draws: splitmix64 over the seed.
    struct Draws: Sendable {
        let faults: UpdateFaults
        private var state: UInt64

        init(_ faults: UpdateFaults) {
            self.faults = faults
            state = faults.seed
        }

        mutating func next() -> Fault? {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            let draw = Double(z >> 11) / Double(1 << 53)
            if draw < faults.unavailable { return .unavailable }
            if draw < faults.unavailable + faults.dropped { return .dropped }
            return nil
        }
    }
}
