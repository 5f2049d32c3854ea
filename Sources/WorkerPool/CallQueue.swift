/// A first-in first-out queue of call ids that pops from the front in O(1).
struct CallQueue {
    private var items: [PoolState.CallID] = []
    private var head = 0
    /// Ids the queue's storage has room for (for tests).
    var reservedCapacity: Int { items.capacity }

    var first: PoolState.CallID? { head < items.count ? items[head] : nil }
    var isEmpty: Bool { head >= items.count }

    mutating func append(_ id: PoolState.CallID) { items.append(id) }

    mutating func removeFirst() {
        head += 1
        if isEmpty {
            startOver()
        } else if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    mutating func remove(_ id: PoolState.CallID) {
        guard let index = items[head...].firstIndex(of: id) else { return }
        items.remove(at: index)
        if isEmpty { startOver() }
    }

    /// Once empty: a burst's storage is given back (see `BurstStorage`).
    private mutating func startOver() {
        items.removeAll(keepingCapacity: items.capacity <= BurstStorage.keptSlots)
        head = 0
    }

    mutating func drain() -> [PoolState.CallID] {
        defer {
            items = []
            head = 0
        }
        return Array(items[head...])
    }
}
