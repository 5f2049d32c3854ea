import Testing

@testable import LocalAgent

/// `waitUntil` checks the agent's state on the agent's actor, then registers; a state announced in
/// between must not be missed (the soak's waits once slept through a batch's last results that way).
struct WaiterRegistryTests {
    @Test func aRegistrationMadeAfterAnotherStateWasAnnouncedIsToldToCheckAgain() async throws {
        let waiters = WaiterRegistry()
        let checkedAt = waiters.generation
        // The change the caller's check did not see: announced before it registers.
        waiters.resumeSatisfied(by: LocalAgentState())
        let outcome = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<LocalAgentState?, any Error>) in
            waiters.add(waiters.makeID(), since: checkedAt, predicate: { _ in false }, continuation: continuation)
        }
        #expect(outcome == nil, "check again")
    }

    @Test func aCurrentRegistrationWaitsForTheStateThatSatisfiesIt() async throws {
        let waiters = WaiterRegistry()
        var open = LocalAgentState()
        open.hasOpenStream = true
        let satisfied = try await withCheckedThrowingContinuation {
            (continuation: CheckedContinuation<Bool, any Error>) in
            waiters.add(
                waiters.makeID(), since: waiters.generation, predicate: { $0.hasOpenStream },
                continuation: continuation)
            // Registered: a state that does not satisfy it leaves it waiting, the next one resumes it.
            waiters.resumeSatisfied(by: LocalAgentState())
            waiters.resumeSatisfied(by: open)
        }
        #expect(satisfied)
    }

    @Test func aCancelledRegistrationThrows() async {
        let waiters = WaiterRegistry()
        let id = waiters.makeID()
        waiters.cancel(id)
        await #expect(throws: CancellationError.self) {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Bool, any Error>) in
                waiters.add(id, since: waiters.generation, predicate: { _ in true }, continuation: continuation)
            }
        }
    }
}
