import Foundation

/// Runs a transformation on several threads and hands results on in stream order.
///
/// A worker takes the next input and, when the item needs one, an output buffer in a single
/// locked step. Output buffers are therefore claimed in stream order: the oldest unfinished item
/// always holds its buffer, so the consumer can never wait on an item that waits for a buffer.
final class OrderedStage: @unchecked Sendable {
    /// Transforms one item. Receives the input and the output buffer claimed for it (if any);
    /// returns the buffer to deliver and gives every other buffer back to its pool.
    typealias Transform = (ChunkBuffer, ChunkBuffer?) throws -> ChunkBuffer

    private let input: BlockingQueue<ChunkBuffer>
    private let outputPool: BufferPool?
    private let needsOutput: @Sendable (ChunkBuffer) -> Bool
    private let failure: PipelineFailure
    private let dispatchLock = NSLock()
    private let finished = NSCondition()
    private var ready: [Int: ChunkBuffer] = [:]
    private var nextToDeliver = 0
    private var workersLeft: Int
    private var threads: [JoinableThread] = []

    init(name: String, workers: Int, input: BlockingQueue<ChunkBuffer>, outputPool: BufferPool?,
         needsOutput: @escaping @Sendable (ChunkBuffer) -> Bool, failure: PipelineFailure,
         makeTransform: () throws -> Transform) rethrows {
        self.input = input
        self.outputPool = outputPool
        self.needsOutput = needsOutput
        self.failure = failure
        workersLeft = workers
        failure.onStop { [finished] in
            finished.lock(); finished.broadcast(); finished.unlock()
        }
        var transforms: [TransformBox] = []
        for _ in 0..<workers { transforms.append(TransformBox(try makeTransform())) }
        for (index, box) in transforms.enumerated() {
            threads.append(JoinableThread(name: "\(name)-\(index)") { [self] in work(box.transform) })
        }
    }

    private func work(_ transform: Transform) {
        defer {
            finished.lock()
            workersLeft -= 1
            finished.broadcast()
            finished.unlock()
        }
        while true {
            dispatchLock.lock()
            guard let item = input.pop() else { dispatchLock.unlock(); return }
            var output: ChunkBuffer?
            if let outputPool, needsOutput(item) {
                output = outputPool.take()
                if output == nil { dispatchLock.unlock(); return }
            }
            dispatchLock.unlock()
            let sequence = item.sequence
            let result: ChunkBuffer
            do {
                result = try transform(item, output)
            } catch {
                failure.record(error)
                return
            }
            result.sequence = sequence
            finished.lock()
            ready[sequence] = result
            finished.broadcast()
            finished.unlock()
        }
    }

    /// The next item in order; nil at the end of the stream or after a failure.
    func next() -> ChunkBuffer? {
        finished.lock()
        defer { finished.unlock() }
        while true {
            if failure.error != nil { return nil }
            if let item = ready.removeValue(forKey: nextToDeliver) {
                nextToDeliver += 1
                return item
            }
            if workersLeft == 0 { return nil }
            finished.wait()
        }
    }

    func join() { threads.forEach { $0.join() } }
}

/// Moves a transform (used by exactly one thread) into that thread's closure.
private final class TransformBox: @unchecked Sendable {
    let transform: OrderedStage.Transform
    init(_ transform: @escaping OrderedStage.Transform) { self.transform = transform }
}
