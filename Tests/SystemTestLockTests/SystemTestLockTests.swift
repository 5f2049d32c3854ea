import Synchronization
import SystemTestLock
import Testing

/// `.systemTest` keeps its tests apart: the cases of a parameterized test, which Swift Testing runs in
/// parallel unless told otherwise, never overlap; and a test that carries the trait inside a suite that
/// carries it too runs, holding the lock once.
@Suite(.systemTest)
struct SystemTestLockTests {
    static let inside = Atomic<Int>(0)

    @Test(arguments: 0..<16)
    func casesOfAParameterizedSystemTestNeverOverlap(index: Int) async {
        #expect(Self.inside.add(1, ordering: .sequentiallyConsistent).newValue == 1, "case \(index) overlapped")
        // Every other case that is ready gets the cooperative threads meanwhile.
        for _ in 0..<100 { await Task.yield() }
        Self.inside.subtract(1, ordering: .sequentiallyConsistent)
    }

    @Test(.systemTest) func aSystemTestInASystemTestSuiteRuns() {
        #expect(Self.inside.load(ordering: .sequentiallyConsistent) == 0)
    }
}
