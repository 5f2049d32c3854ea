// Only test builds can see the toolchain's Testing module; a plain `swift build` (the release
// build the benchmarks use) builds this library target too, and then it is empty.
#if canImport(Testing)
    import SystemSupport
    public import Testing

    /// One system test at a time in the whole test process, whichever test target it is in.
    ///
    /// `swift test` runs every test target in one process, and Swift Testing runs suites and tests in
    /// parallel; `.serialized` only orders the tests inside the suite that carries it. The suites that
    /// start executors, local agents, servers or real processes, or make cgroups, share what none of
    /// them owns: the machine's cgroup hierarchies (and which cgroup this very process is in, which an
    /// executor running in it may change), loopback ports that an agent gives up and listens on again
    /// across a restart, the children of this process, its cooperative threads (two on a two-core
    /// machine, one of them blocked while a test waits for a process to exit), and the CPU that their
    /// waits are bounded against. Under XCTest they ran one after another; `.systemTest` keeps them
    /// so: every test (every case of a parameterized one) of a suite that carries it holds one lock for
    /// the whole process while it runs. Tests of other suites run beside it as before.
    public struct SystemTestTrait: SuiteTrait, TestTrait, TestScoping {
        /// Applied to every test of the suite, and of suites nested in it, so each holds the lock by itself.
        public var isRecursive: Bool { true }

        public func provideScope(
            for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void
        ) async throws {
            // A test that carries the trait in a suite that carries it too holds the lock once.
            if Self.isHeld { return try await function() }
            await Self.lock.acquire()
            defer { Self.lock.release() }
            try await Self.$isHeld.withValue(true) { try await function() }
        }

        @TaskLocal private static var isHeld = false
        private static let lock = FIFOLock()
    }

    extension Trait where Self == SystemTestTrait {
        /// Runs each test of the suite with no other system test running (see ``SystemTestTrait``).
        public static var systemTest: Self { Self() }
    }

    /// An asynchronous lock handed to its waiters in the order they asked for it.
    final class FIFOLock: Sendable {
        private struct State {
            var held = false
            var waiters: [CheckedContinuation<Void, Never>] = []
        }

        private let state = LockedValue(State())

        func acquire() async {
            await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
                let granted = state.withLock { state in
                    guard state.held else {
                        state.held = true
                        return true
                    }
                    state.waiters.append(continuation)
                    return false
                }
                if granted { continuation.resume() }
            }
        }

        func release() {
            let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
                guard !state.waiters.isEmpty else {
                    state.held = false
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
    }
#endif
