import Testing
import SystemSupport

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct SerialThreadTests {
    /// What the jobs saw.
    final class Seen: Sendable {
        let running = LockedValue(0)
        let overlapped = LockedValue(false)
        let threads = LockedValue(Set<UInt>())
    }

    /// Jobs given from many tasks at once run one at a time, each exactly once, all on the same
    /// thread of its own; after stop() they run inline.
    @Test func jobsRunOneAtATimeOnOneThreadOfItsOwn() async {
        let serial = SerialThread(named: "serial-test")
        let seen = Seen()
        let results = await withTaskGroup(of: Int.self) { group in
            for n in 0..<200 {
                group.addTask {
                    await serial.run {
                        let now = seen.running.withLock { value -> Int in
                            value += 1
                            return value
                        }
                        if now > 1 { seen.overlapped.withLock { $0 = true } }
                        seen.threads.withLock { _ = $0.insert(UInt(pthread_self())) }
                        seen.running.withLock { $0 -= 1 }
                        return n * 2
                    }
                }
            }
            var all: [Int] = []
            for await value in group { all.append(value) }
            return all
        }
        #expect(results.sorted() == (0..<200).map { $0 * 2 })
        #expect(!seen.overlapped.withLock { $0 })
        #expect(seen.threads.withLock { $0.count } == 1)
        serial.stop()
        let after = await serial.run { UInt(pthread_self()) }
        #expect(!seen.threads.withLock { $0.contains(after) }, "after stop() a job runs inline, not on the old thread")
    }
}
