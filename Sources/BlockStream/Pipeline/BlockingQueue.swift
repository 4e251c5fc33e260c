import Foundation

/// A bounded FIFO between threads. `push` blocks while full, `pop` while empty. Closing wakes
/// everyone: pushes then fail and pops drain what is left, then return nil.
public final class BlockingQueue<Element>: @unchecked Sendable {
    private let condition = NSCondition()
    private var items: [Element?]
    private var head = 0
    private var size = 0
    private var closed = false

    public init(capacity: Int) {
        precondition(capacity > 0)
        items = Array(repeating: nil, count: capacity)
    }

    /// False if the queue was closed.
    @discardableResult
    public func push(_ element: Element) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        while size == items.count && !closed { condition.wait() }
        guard !closed else { return false }
        items[(head + size) % items.count] = element
        size += 1
        condition.broadcast()
        return true
    }

    /// The next element; nil when the queue is closed and empty.
    public func pop() -> Element? {
        condition.lock()
        defer { condition.unlock() }
        while size == 0 && !closed { condition.wait() }
        guard size > 0 else { return nil }
        let element = items[head]
        items[head] = nil
        head = (head + 1) % items.count
        size -= 1
        condition.broadcast()
        return element
    }

    public func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }
}
