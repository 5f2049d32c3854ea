/// A first-in, first-out queue on an array: taking the first element is O(1) (a slot is cleared
/// and an index moves), and the taken prefix is dropped once it is more than half the array.
struct FIFOQueue<Element> {
    private var items: [Element?] = []
    private var head = 0

    init() {}

    /// A queue whose array is allocated now, with room for `capacity` elements.
    init(reservingCapacity capacity: Int) {
        items.reserveCapacity(capacity)
    }

    var isEmpty: Bool { head == items.count }
    var count: Int { items.count - head }

    mutating func append(_ element: Element) {
        items.append(element)
    }

    /// Removes and returns the first element; nil when there is none.
    mutating func popFirst() -> Element? {
        guard head < items.count else {
            items.removeAll(keepingCapacity: true)
            head = 0
            return nil
        }
        let element = items[head]
        items[head] = nil
        head += 1
        if head > 64 && head * 2 > items.count {
            items.removeFirst(head)
            head = 0
        }
        return element
    }
}

extension FIFOQueue: Sendable where Element: Sendable {}
