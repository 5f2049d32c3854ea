/// What the pool's tables and queues keep of a burst once they are empty.
enum BurstStorage {
    /// Slots kept once empty; a burst's larger storage is given back (a queue of a million
    /// mini-tasks would otherwise keep its high-water mark for the executor's life).
    static var keptSlots: Int { 4096 }
}

/// The calls a pool holds, by id: a window of slots that begins at the oldest id it holds, with a
/// dictionary beside it for the few calls held far longer than those after them.
///
/// The pool hands ids out one after another and most calls end in about the order they began
/// (mini-tasks by the tens of thousands), so finding a call is an index into the window: no
/// hashing, and calls made together lie side by side in memory. A hashed table scattered them, a
/// cache miss per lookup with many calls in flight, looked up several times each. A call that
/// stays while thousands after it come and go (a Mesos task running for hours beside a stream of
/// mini-tasks) would make the window grow with every later id, so the window is kept dense: when
/// it spans more than twice the calls it holds (plus some slack), its oldest calls move to the
/// dictionary.
struct CallTable<Value> {
    typealias ID = PoolState.CallID

    /// `window[start]` is the slot of id `base`; slots before `start` are spent.
    private var window: [Value?] = []
    private var start = 0
    private var base: UInt64 = 0
    /// Calls in the window.
    private var held = 0
    /// Calls older than the window's first id (or far beyond its end when they came).
    private var overflow: [ID: Value] = [:]

    /// The window may span this many ids more than twice the calls it holds.
    private static var slack: Int { 1024 }

    var count: Int { held + overflow.count }
    /// How many ids the window spans, held or not (for tests).
    var windowSpan: Int { window.count - start }
    /// Calls the window's storage has room for (for tests).
    var reservedCapacity: Int { window.capacity }
    var isEmpty: Bool { count == 0 }

    subscript(id: ID) -> Value? {
        get {
            if let slot = slot(of: id) { return window[slot] }
            return overflow[id]
        }
        set {
            if let newValue { insert(newValue, for: id) } else { removeValue(forKey: id) }
        }
    }

    func contains(_ id: ID) -> Bool {
        if let slot = slot(of: id) { return window[slot] != nil }
        return overflow.index(forKey: id) != nil
    }

    /// Runs `body` on the call in place (never on a copy: a copy of a call shares its buffers, so
    /// the first write to one of them would copy it); nil if there is no such call.
    mutating func modify<Result>(_ id: ID, _ body: (inout Value) -> Result) -> Result? {
        if let slot = slot(of: id) {
            guard window[slot] != nil else { return nil }
            return body(&window[slot]!)
        }
        guard let index = overflow.index(forKey: id) else { return nil }
        return body(&overflow.values[index])
    }

    @discardableResult
    mutating func removeValue(forKey id: ID) -> Value? {
        guard let slot = slot(of: id) else {
            let value = overflow.removeValue(forKey: id)
            if overflow.isEmpty && overflow.capacity > BurstStorage.keptSlots { overflow = [:] }
            return value
        }
        guard let value = window[slot].take() else { return nil }
        held -= 1
        if slot == start {
            dropSpentSlots()
        } else if slot == window.count - 1 {
            // The newest: the window ends at the newest call it holds.
            while window.count > start, window[window.count - 1] == nil { window.removeLast() }
        }
        return value
    }

    private mutating func insert(_ value: Value, for id: ID) {
        if let slot = slot(of: id) {
            if window[slot] == nil { held += 1 }
            window[slot] = value
            return
        }
        if !overflow.isEmpty, let index = overflow.index(forKey: id) {
            overflow.values[index] = value
            return
        }
        if start == window.count {
            // Empty: the window begins here.
            window.removeAll(keepingCapacity: true)
            start = 0
            base = id.raw
        } else if id.raw < base {
            overflow[id] = value
            return
        } else {
            let gap = id.raw - (base + UInt64(window.count - start))
            if gap > UInt64(max(held, Self.slack)) {
                // Far beyond the window (not how the pool numbers calls): begin a new one there.
                moveWindowToOverflow()
                base = id.raw
            } else {
                window.append(contentsOf: repeatElement(nil, count: Int(gap)))
            }
        }
        window.append(value)
        held += 1
        while window.count - start > 2 * held + Self.slack { evictOldest() }
    }

    private func slot(of id: ID) -> Int? {
        guard id.raw >= base else { return nil }
        let offset = id.raw - base
        guard offset < UInt64(window.count - start) else { return nil }
        return start + Int(offset)
    }

    /// Moves the window's first slot out: its call, if any, to the dictionary.
    private mutating func evictOldest() {
        if let value = window[start].take() {
            overflow[ID(raw: base)] = value
            held -= 1
        }
        dropSpentSlots()
    }

    /// Advances past the empty slots at the window's front; gives their memory back now and then.
    private mutating func dropSpentSlots() {
        while start < window.count, window[start] == nil {
            start += 1
            base += 1
        }
        if start == window.count {
            window.removeAll(keepingCapacity: window.capacity <= BurstStorage.keptSlots)
            start = 0
        } else if start >= Self.slack, start * 2 >= window.count {
            window.removeFirst(start)
            start = 0
        }
    }

    private mutating func moveWindowToOverflow() {
        for (offset, value) in window[start...].enumerated() {
            if let value { overflow[ID(raw: base + UInt64(offset))] = value }
        }
        window.removeAll(keepingCapacity: true)
        start = 0
        held = 0
    }
}
