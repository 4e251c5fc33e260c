import OpenSSLSupport

/// Receives `C("M=" + magic ‖ data)` and writes the data (Ganeti's stream, docs/protocol.md §5.3).
///
/// Receiving and decrypting (caller's thread), decompressing, and writing run on their own
/// threads. The magic is checked on the decompressed bytes before the first write.
struct GanetiStreamImporter {
    let settings: StreamSettings
    let reporter: StatusReporter

    func run(connection: TLSConnection, sink: BlockSink) throws {
        let failure = PipelineFailure()
        let capacity = settings.chunkSize
        let receivePool = BufferPool(buffers: StreamSettings.buffersPerStage, capacity: capacity)
        let plainPool = settings.compression == .none ? receivePool : BufferPool(buffers: StreamSettings.buffersPerStage, capacity: capacity)
        let writeQueue = BlockingQueue<ChunkBuffer>(capacity: StreamSettings.buffersPerStage)
        let compressedQueue = BlockingQueue<ChunkBuffer>(capacity: StreamSettings.buffersPerStage)
        failure.onStop { receivePool.close(); plainPool.close(); writeQueue.close(); compressedQueue.close() }

        let writer = startStage("write", failure: failure) { [reporter] in
            while let chunk = writeQueue.pop() {
                try sink.write(chunk.bytes)
                reporter.bytesMoved.add(Int64(chunk.count), ordering: .relaxed)
                plainPool.give(chunk)
            }
        }

        var decompressThread: JoinableThread?
        var gate = MagicGate(magic: settings.magic)
        if let decompressor = try settings.compression.makeDecompressor() {
            let box = DecompressorBox(decompressor)
            decompressThread = startStage("decompress", failure: failure) { [gate] in
                var gate = gate
                defer { writeQueue.close() }
                try Self.decompress(box.decompressor, from: compressedQueue, returning: receivePool, into: plainPool,
                                    gate: &gate, writeQueue: writeQueue)
            }
        }

        do {
            while failure.error == nil, let chunk = receivePool.take() {
                let n = try connection.readFully(into: chunk.free)
                chunk.count = n
                if n == 0 { receivePool.give(chunk); break }
                if decompressThread != nil {
                    guard compressedQueue.push(chunk) else { break }
                } else {
                    try gate.admit(chunk)
                    if chunk.count == 0 { receivePool.give(chunk); continue }
                    guard writeQueue.push(chunk) else { break }
                }
                if n < capacity { break }
            }
            if decompressThread == nil, failure.error == nil { try gate.checkComplete() }
        } catch {
            failure.record(error)
        }
        compressedQueue.close()
        decompressThread?.join()
        writeQueue.close()
        writer.join()
        if failure.error == nil {
            do { try sink.flush() } catch { failure.record(error) }
        }
        if let error = failure.error {
            connection.abort()
            throw error
        }
        // Confirm: our close_notify tells a gnt-move exporter that everything is durable.
        try? connection.sendCloseNotify()
        connection.closeSocket()
    }

    private static func decompress(_ decompressor: any StreamDecompressor, from input: BlockingQueue<ChunkBuffer>,
                                   returning inputPool: BufferPool, into outputPool: BufferPool,
                                   gate: inout MagicGate, writeQueue: BlockingQueue<ChunkBuffer>) throws {
        var output: ChunkBuffer? = nil
        func emit(_ chunk: ChunkBuffer) throws -> Bool {
            try gate.admit(chunk)
            if chunk.count == 0 { outputPool.give(chunk); return true }
            return writeQueue.push(chunk)
        }
        while let chunk = input.pop() {
            var consumed = 0
            while consumed < chunk.count {
                if output == nil { output = outputPool.take() }
                guard let out = output else { inputPool.give(chunk); return }
                let (used, produced) = try decompressor.step(
                    input: UnsafeRawBufferPointer(start: chunk.base + consumed, count: chunk.count - consumed), output: out.free)
                consumed += used
                out.count += produced
                if out.isFull {
                    output = nil
                    guard try emit(out) else { inputPool.give(chunk); return }
                } else if used == 0 && produced == 0 {
                    break
                }
            }
            inputPool.give(chunk)
        }
        // Flush what the decompressor still holds (its output may have been cut at a full buffer).
        while true {
            if output == nil { output = outputPool.take() }
            guard let out = output else { return }
            let (_, produced) = try decompressor.step(input: UnsafeRawBufferPointer(start: nil, count: 0), output: out.free)
            out.count += produced
            if out.isFull { output = nil; guard try emit(out) else { return }; continue }
            break
        }
        if let out = output, out.count > 0 {
            guard try emit(out) else { return }
        } else if let out = output {
            outputPool.give(out)
        }
        guard decompressor.atBoundary else {
            throw BlockStreamError(.truncated, "the stream ended in the middle of a \(decompressor.formatName) member: the data is incomplete")
        }
        try gate.checkComplete()
    }
}

/// Moves a decompressor (used by exactly one thread) into that thread's closure.
private final class DecompressorBox: @unchecked Sendable {
    let decompressor: any StreamDecompressor
    init(_ decompressor: any StreamDecompressor) { self.decompressor = decompressor }
}
