/// A first-in first-out queue of call ids that pops from the front in O(1).
struct CallQueue {
    private var items: [PoolState.CallID] = []
    private var head = 0

    var first: PoolState.CallID? { head < items.count ? items[head] : nil }
    var isEmpty: Bool { head >= items.count }

    mutating func append(_ id: PoolState.CallID) { items.append(id) }

    mutating func removeFirst() {
        head += 1
        if head >= 1024 && head * 2 >= items.count {
            items.removeFirst(head)
            head = 0
        }
    }

    mutating func remove(_ id: PoolState.CallID) {
        guard let index = items[head...].firstIndex(of: id) else { return }
        items.remove(at: index)
    }

    mutating func drain() -> [PoolState.CallID] {
        defer {
            items = []
            head = 0
        }
        return Array(items[head...])
    }
}
