import SeededRandom
import Testing

@testable import WorkerPool

/// The pool's table of calls against a dictionary, and its window's bounds.
@Suite struct CallTableTests {
    typealias ID = PoolState.CallID

    /// A reproducible sequence: mostly ids in order, removals anywhere, now and then an id below
    /// the window or far beyond it, and changes in place.
    @Test func aCallTableAgreesWithADictionaryWhateverTheOrder() {
        var table = CallTable<String>()
        var reference: [ID: String] = [:]
        var random = SeededRandom(seed: 7)
        var next: UInt64 = 1
        for step in 0..<60_000 {
            let roll = random.next() % 100
            if roll < 55 {
                reference[ID(raw: next)] = "call \(next)"
                table[ID(raw: next)] = "call \(next)"
                next += 1
            } else if roll < 90, let id = reference.keys.randomElement(using: &random) {
                #expect(table.removeValue(forKey: id) == reference.removeValue(forKey: id))
            } else if roll < 93 {
                let id = ID(raw: random.next() % next)
                reference[id] = "old \(id.raw)"
                table[id] = "old \(id.raw)"
            } else if roll < 94 {
                next += 5_000 + random.next() % 50_000
            } else if let id = reference.keys.randomElement(using: &random) {
                reference[id]! += "!"
                #expect(table.modify(id) { $0 += "!" } != nil)
            }
            #expect(table.removeValue(forKey: ID(raw: next + 10)) == nil)
            if step % 2_000 == 0 {
                #expect(table.count == reference.count)
                for (id, value) in reference { #expect(table[id] == value) }
            }
        }
        for (id, value) in reference { #expect(table.removeValue(forKey: id) == value) }
        #expect(table.isEmpty)
        #expect(table.windowSpan == 0)
    }

    /// A Mesos task running for hours beside a stream of mini-tasks: the window does not grow with
    /// every id that came and went after it.
    @Test func aCallHeldWhileThousandsComeAndGoKeepsTheWindowSmall() {
        var table = CallTable<Int>()
        table[ID(raw: 1)] = 1
        for raw in UInt64(2)...300_000 {
            table[ID(raw: raw)] = Int(raw)
            if raw % 3 == 1 {
                // A few in flight at a time, ending out of order.
                table.removeValue(forKey: ID(raw: raw))
                table.removeValue(forKey: ID(raw: raw - 2))
                table.removeValue(forKey: ID(raw: raw - 1))
            }
            // At most 4 held at once: twice that and the slack, whatever the ids.
            if raw % 1_000 == 0 { #expect(table.windowSpan <= 2 * 4 + 1_024) }
        }
        // 1, and the two after the last group.
        #expect(table.count == 3)
        #expect(table[ID(raw: 1)] == 1)
        #expect(table.modify(ID(raw: 1)) { $0 += 1 } != nil)
        #expect(table.removeValue(forKey: ID(raw: 1)) == 2)
        #expect(table.modify(ID(raw: 1)) { $0 += 1 } == nil)
        #expect(table.contains(ID(raw: 300_000)))
        #expect(!table.contains(ID(raw: 299_998)))
        #expect(table.windowSpan == 2)
    }

    /// An id that moved to the dictionary is found there when it is set again, even once the window
    /// has emptied: never held twice.
    @Test func aCallSetAgainAfterMovingOutIsHeldOnce() {
        var table = CallTable<Int>()
        table[ID(raw: 1)] = 1
        for raw in UInt64(2)...3_000 {
            table[ID(raw: raw)] = Int(raw)
            table.removeValue(forKey: ID(raw: raw))
        }
        #expect(table.windowSpan == 0)
        table[ID(raw: 1)] = 10
        #expect(table.count == 1)
        #expect(table[ID(raw: 1)] == 10)
        #expect(table.removeValue(forKey: ID(raw: 1)) == 10)
        #expect(table.isEmpty)
    }

    /// A burst of a million mini-tasks queued at once must not keep its storage for the executor's
    /// life: once the table or the queue is empty again, storage beyond a small reserve is given
    /// back, whichever way its calls left.
    @Test func anEmptiedTableAndQueueGiveABurstsStorageBack() {
        var table = CallTable<[UInt8]>()
        var queue = CallQueue()
        let burst = UInt64(50_000)
        for raw in 1...burst {
            table[ID(raw: raw)] = [1]
            queue.append(ID(raw: raw))
        }
        #expect(table.reservedCapacity >= Int(burst))
        #expect(queue.reservedCapacity >= Int(burst))
        // Ended out of order at the end, taken from the front, one withdrawn from the middle.
        queue.remove(ID(raw: burst / 2))
        for _ in 1..<burst { queue.removeFirst() }
        for raw in (1...burst).reversed() where raw % 7 == 0 { table.removeValue(forKey: ID(raw: raw)) }
        for raw in 1...burst where raw % 7 != 0 { table.removeValue(forKey: ID(raw: raw)) }
        #expect(table.isEmpty && queue.isEmpty)
        #expect(table.reservedCapacity <= BurstStorage.keptSlots)
        #expect(queue.reservedCapacity <= BurstStorage.keptSlots)
        // A small burst keeps its storage for the next one.
        for raw in burst + 1...burst + 100 { table[ID(raw: raw)] = [2] }
        let small = table.reservedCapacity
        for raw in burst + 1...burst + 100 { table.removeValue(forKey: ID(raw: raw)) }
        #expect(table.reservedCapacity == small)
        // And the table still works from there.
        table[ID(raw: burst + 101)] = [3]
        #expect(table[ID(raw: burst + 101)] == [3])
    }
}
