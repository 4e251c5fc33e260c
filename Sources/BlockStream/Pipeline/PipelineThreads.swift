import Foundation

/// The first failure of a pipeline. Recording it runs the registered stop actions (closing
/// queues and pools), so every stage blocked on another wakes up and ends.
public final class PipelineFailure: @unchecked Sendable {
    private let lock = NSLock()
    private var first: (any Error)?
    private var stopActions: [@Sendable () -> Void] = []

    public init() {}

    public var error: (any Error)? {
        lock.lock(); defer { lock.unlock() }
        return first
    }

    public func onStop(_ action: @escaping @Sendable () -> Void) {
        lock.lock(); defer { lock.unlock() }
        stopActions.append(action)
    }

    public func record(_ error: any Error) {
        lock.lock()
        guard first == nil else { lock.unlock(); return }
        first = error
        let actions = stopActions
        lock.unlock()
        for action in actions { action() }
    }
}

/// A thread that can be joined.
public final class JoinableThread: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)

    /// Starts `body` on a new thread with a large stack.
    public init(name: String, _ body: @escaping @Sendable () -> Void) {
        let done = self.done
        let thread = Thread {
            body()
            done.signal()
        }
        thread.name = name
        thread.stackSize = 1 << 20
        thread.start()
    }

    public func join() { done.wait() }
}

/// Runs `body` on its own thread; a thrown error is recorded as the pipeline's failure.
@discardableResult
func startStage(_ name: String, failure: PipelineFailure, _ body: @escaping @Sendable () throws -> Void) -> JoinableThread {
    JoinableThread(name: name) {
        do { try body() } catch { failure.record(error) }
    }
}
