import OpenSSLSupport

/// Sends `C("M=" + magic ‖ data)` until the source ends (Ganeti's stream, docs/protocol.md §5.3).
///
/// Stages run on their own threads and overlap: reading the source, compressing (several
/// threads, chunk by chunk), and encrypting and sending on the caller's thread.
struct GanetiStreamExporter {
    let settings: StreamSettings
    let reporter: StatusReporter
    var limiter: BandwidthLimiter? = nil

    func run(connection: TLSConnection, source: BlockSource) throws {
        let failure = PipelineFailure()
        let readPool = BufferPool(buffers: StreamSettings.buffersPerStage, capacity: settings.chunkSize)
        let readQueue = BlockingQueue<ChunkBuffer>(capacity: StreamSettings.buffersPerStage)
        failure.onStop { readPool.close(); readQueue.close() }

        let reader = startStage("read", failure: failure) { [settings, reporter] in
            defer { readQueue.close() }
            var prefix = settings.magic.map { Array(("M=" + $0).utf8) } ?? []
            var sequence = 0
            while let chunk = readPool.take() {
                if !prefix.isEmpty {
                    prefix.withUnsafeBytes { chunk.append($0) }
                    prefix = []
                }
                let n = try source.read(into: chunk.free)
                chunk.count += n
                reporter.bytesMoved.add(Int64(n), ordering: .relaxed)
                guard chunk.count > 0 else { readPool.give(chunk); return }
                chunk.sequence = sequence
                sequence += 1
                guard readQueue.push(chunk) else { readPool.give(chunk); return }
                if n == 0 || chunk.count < chunk.capacity { return }
            }
        }

        var compressor: OrderedStage?
        var outputPool: BufferPool?
        if settings.compression != .none {
            let pool = BufferPool(buffers: StreamSettings.buffersPerStage + settings.compressionWorkers,
                                  capacity: settings.chunkSize + CompressionMethod.worstCaseExpansion(settings.chunkSize))
            failure.onStop { pool.close() }
            outputPool = pool
            compressor = try OrderedStage(name: "compress", workers: settings.compressionWorkers, input: readQueue,
                                          outputPool: pool, needsOutput: { _ in true }, failure: failure) {
                guard let codec = try settings.compression.makeCompressor() else {
                    throw BlockStreamError(.configuration, "no compressor for \(settings.compression.rawValue)")
                }
                return { chunk, output in
                    guard let output else { throw BlockStreamError(.configuration, "compression without an output buffer") }
                    defer { readPool.give(chunk) }
                    try codec.compress(chunk.bytes, into: output)
                    return output
                }
            }
        }

        let wire = WireWriter(connection: connection, limiter: limiter, counter: reporter)
        do {
            while failure.error == nil {
                let chunk: ChunkBuffer?
                if let compressor { chunk = compressor.next() } else { chunk = readQueue.pop() }
                guard let chunk else { break }
                try wire.send(chunk.bytes)
                (outputPool ?? readPool).give(chunk)
            }
        } catch {
            failure.record(error)
        }
        reader.join()
        compressor?.join()
        if let error = failure.error {
            connection.abort()
            throw error
        }
        try finish(connection)
    }

    /// Ends the stream with close_notify, then waits for the importer's close_notify, which a
    /// gnt-move importer sends only after its data is durable.
    func finish(_ connection: TLSConnection) throws {
        try connection.sendCloseNotify()
        let confirmed = connection.awaitPeerClose(timeout: settings.confirmationTimeout)
        connection.closeSocket()
        if confirmed {
            reporter.log("importer confirmed the end of the stream")
        } else {
            throw BlockStreamError(.truncated, "the importer closed the connection without confirming the end of the stream; it may have failed")
        }
    }
}
