import Foundation

/// Compresses chunks on several threads and hands them on in their original order.
///
/// Each worker takes the next input chunk and an output buffer in one locked step, so output
/// buffers are always claimed in stream order: the oldest unfinished chunk holds a buffer and the
/// consumer can never wait on a chunk that waits for a buffer.
final class ParallelCompressor: @unchecked Sendable {
    private let input: BlockingQueue<ChunkBuffer>
    private let inputPool: BufferPool
    private let outputPool: BufferPool
    private let failure: PipelineFailure
    private let dispatchLock = NSLock()
    private let finished = NSCondition()
    private var ready: [Int: ChunkBuffer] = [:]
    private var nextToDeliver = 0
    private var workersLeft: Int
    private var threads: [JoinableThread] = []

    init(method: CompressionMethod, workers: Int, input: BlockingQueue<ChunkBuffer>, inputPool: BufferPool,
         outputPool: BufferPool, failure: PipelineFailure) throws(BlockStreamError) {
        self.input = input
        self.inputPool = inputPool
        self.outputPool = outputPool
        self.failure = failure
        workersLeft = workers
        var compressors: [any ChunkCompressor] = []
        for _ in 0..<workers {
            guard let compressor = try method.makeCompressor() else { break }
            compressors.append(compressor)
        }
        failure.onStop { [finished] in
            finished.lock(); finished.broadcast(); finished.unlock()
        }
        for (index, compressor) in compressors.enumerated() {
            let box = CompressorBox(compressor)
            threads.append(JoinableThread(name: "compress-\(index)") { [self] in work(box.compressor) })
        }
    }

    private func work(_ compressor: any ChunkCompressor) {
        defer {
            finished.lock()
            workersLeft -= 1
            finished.broadcast()
            finished.unlock()
        }
        while true {
            dispatchLock.lock()
            guard let chunk = input.pop() else { dispatchLock.unlock(); return }
            guard let output = outputPool.take() else { dispatchLock.unlock(); inputPool.give(chunk); return }
            dispatchLock.unlock()
            output.sequence = chunk.sequence
            do {
                try compressor.compress(chunk.bytes, into: output)
            } catch {
                failure.record(error)
                inputPool.give(chunk)
                outputPool.give(output)
                return
            }
            inputPool.give(chunk)
            finished.lock()
            ready[output.sequence] = output
            finished.broadcast()
            finished.unlock()
        }
    }

    /// The next compressed chunk in order; nil at the end of the stream or after a failure.
    func next() -> ChunkBuffer? {
        finished.lock()
        defer { finished.unlock() }
        while true {
            if failure.error != nil { return nil }
            if let chunk = ready.removeValue(forKey: nextToDeliver) {
                nextToDeliver += 1
                return chunk
            }
            if workersLeft == 0 { return nil }
            finished.wait()
        }
    }

    func join() { threads.forEach { $0.join() } }
}

/// Moves a compressor (used by exactly one thread) into that thread's closure.
private final class CompressorBox: @unchecked Sendable {
    let compressor: any ChunkCompressor
    init(_ compressor: any ChunkCompressor) { self.compressor = compressor }
}
