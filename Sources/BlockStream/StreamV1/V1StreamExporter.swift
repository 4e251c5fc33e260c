import CZstd
import OpenSSLSupport

/// The sending side of gnt-move/1: sparse- and zero-aware, every chunk checksummed, a
/// whole-disk digest confirmed by the importer, and resumable from the importer's journal.
struct V1StreamExporter {
    let settings: StreamSettings
    let reporter: StatusReporter
    let journalPath: String?
    let resume: Bool
    let limiter: BandwidthLimiter?
    let binding: TransferJournal.Binding
    /// For tests and benchmarks: stop as if crashed once this many disk bytes were sent.
    let abortAfter: Int64?
    /// A warm move's pre-copy pass: the importer waits for another pass after this one.
    var precopy = false

    /// Returns the whole-disk digest both ends agreed on, rendered (`blake3-chunks-1m:<hex>`).
    func run(connection: TLSConnection, source: BlockSource) throws -> String {
        guard let size = source.size else {
            throw BlockStreamError(.configuration, "gnt-move/1 needs a source of known size (a file or a block device)")
        }
        let link = V1Connection(connection, limiter: limiter, counter: reporter)
        let offer = ChunkDigestAlgorithm.offer(only: settings.chunkDigest)
        let hello = V1Hello(magic: settings.magic, size: size, chunk_size: V1Protocol.chunkSize, resume: resume, compare: true,
                            final: precopy ? false : nil, digests: offer.map(\.rawValue))
        try link.send(V1FrameHeader(type: .hello), payload: V1Control.encode(hello))
        let (_, welcomePayload) = try link.readReply(expecting: .welcome, what: "WELCOME", peer: "the importer")
        let welcome = try V1Control.decode(V1Welcome.self, welcomePayload, what: "WELCOME")
        let offset = welcome.offset
        let algorithm = try ChunkDigestAlgorithm.named(welcome.digest, offered: offer)
        let chunk = Int64(V1Protocol.chunkSize)
        guard offset >= 0, offset <= size, offset % chunk == 0 || offset == size else {
            throw BlockStreamError(.protocolError, "gnt-move/1: the importer asked to resume at an invalid offset \(offset)")
        }
        // The importer's digests of what it holds: chunks that match travel as SAME.
        let held = welcome.compare == true ? try HeldDigests.receive(on: link, from: offset, size: size, algorithm: algorithm) : nil
        var digest = DiskDigest(algorithm)
        let journal = try prepareJournal(offset: offset, size: size, source: source, digest: &digest)
        if offset > 0 {
            reporter.log("resuming at byte \(offset) of \(size) (\(offset * 100 / max(size, 1))%)")
            reporter.update { $0.resume_offset = offset }
        }
        reporter.bytesMoved.store(offset, ordering: .relaxed)
        let changed = try stream(link: link, source: source, from: offset, size: size, digest: &digest, journal: journal, held: held)
        if held != nil { reporter.log("\(changed) of the \(size - offset) bytes from byte \(offset) differed from what the importer holds") }
        reporter.update { $0.changed_bytes = ($0.changed_bytes ?? 0) + changed }

        var end = V1FrameHeader(type: .end)
        end.length = UInt64(size)
        end.checksum = digest.value
        try link.send(end)
        let (final, _) = try link.readReply(expecting: .final, what: "FINAL", peer: "the importer")
        guard MessageAuthentication.constantTimeEqual(final.checksum, digest.value) else {
            throw BlockStreamError(.integrity, "the importer's digest \(algorithm.render(final.checksum)) differs from the source's \(digest.rendered)")
        }
        try? connection.sendCloseNotify()
        _ = connection.awaitPeerClose(timeout: 10)
        connection.closeSocket()
        return digest.rendered
    }

    /// Loads the digests of the chunks before `offset`: from this side's journal where it has
    /// them, otherwise by reading the source again.
    private func prepareJournal(offset: Int64, size: Int64, source: BlockSource, digest: inout DiskDigest) throws -> TransferJournal? {
        guard let journalPath else {
            if offset > 0 { try recompute(chunks: 0..<chunkCount(offset), size: size, source: source, digest: &digest, journal: nil) }
            return nil
        }
        let needed = chunkCount(offset)
        var binding = binding
        binding.digest = TransferJournal.Binding.name(of: digest.algorithm)
        if let recorded = TransferJournal.recordedAlgorithm(path: journalPath), recorded != digest.algorithm {
            // Its records are digests of another kind: of no use for this transfer.
            reporter.log("the exporter journal holds \(recorded.rawValue) digests, this transfer uses \(digest.algorithm.rawValue); starting it again")
            TransferJournal.discard(path: journalPath)
        }
        if offset > 0, let existing = try TransferJournal.open(path: journalPath, expected: binding) {
            let usable = min(existing.records, needed)
            try existing.replay(usable) { digest.add(chunkDigest: $0) }
            try existing.truncate(to: usable)
            if usable < needed {
                reporter.log("the exporter journal covers \(usable) of \(needed) chunks; reading the rest of the prefix again")
                try recompute(chunks: usable..<needed, size: size, source: source, digest: &digest, journal: existing)
            }
            return existing
        }
        let journal = try TransferJournal.create(path: journalPath, binding: binding)
        if offset > 0 {
            reporter.log("no exporter journal; reading the first \(offset) bytes again to rebuild the digest")
            try recompute(chunks: 0..<needed, size: size, source: source, digest: &digest, journal: journal)
        }
        return journal
    }

    private func chunkCount(_ offset: Int64) -> Int64 {
        let chunk = Int64(V1Protocol.chunkSize)
        return (offset + chunk - 1) / chunk
    }

    private func recompute(chunks: Range<Int64>, size: Int64, source: BlockSource, digest: inout DiskDigest,
                           journal: TransferJournal?) throws {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: V1Protocol.chunkSize, alignment: 4096)
        defer { buffer.deallocate() }
        var batch: [[UInt8]] = []
        for index in chunks {
            let offset = index * Int64(V1Protocol.chunkSize)
            let length = Int(min(Int64(V1Protocol.chunkSize), size - offset))
            let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length]), at: offset)
            guard n == length else { throw BlockStreamError(.source, "\(source.name) is shorter than its size") }
            let chunkDigest = digest.algorithm.digest(UnsafeRawBufferPointer(rebasing: buffer[0..<length]))
            digest.add(chunkDigest: chunkDigest)
            batch.append(chunkDigest)
        }
        try journal?.append(batch, durable: false)
    }

    /// Streams from `start`; returns the disk bytes sent as DATA or ZERO (not SAME).
    private func stream(link: V1Connection, source: BlockSource, from start: Int64, size: Int64,
                        digest: inout DiskDigest, journal: TransferJournal?, held: HeldDigests?) throws -> Int64 {
        let algorithm = digest.algorithm
        let failure = PipelineFailure()
        let chunk = V1Protocol.chunkSize
        let header = V1FrameHeader.size
        let readPool = BufferPool(buffers: StreamSettings.buffersPerStage + settings.compressionWorkers, capacity: header + chunk)
        let readQueue = BlockingQueue<ChunkBuffer>(capacity: StreamSettings.buffersPerStage)
        let compress = settings.compression != .none
        let outputPool = compress ? BufferPool(buffers: StreamSettings.buffersPerStage + settings.compressionWorkers,
                                               capacity: header + Int(ZSTD_compressBound(chunk))) : nil
        failure.onStop { readPool.close(); readQueue.close(); outputPool?.close() }

        let reader = startStage("read", failure: failure) {
            defer { readQueue.close() }
            var sparse = SparseMap(fd: source.fd, size: size)
            var offset = start
            var sequence = 0
            while offset < size, let buffer = readPool.take() {
                let length = Int(min(Int64(chunk), size - offset))
                buffer.diskOffset = offset
                buffer.diskLength = Int64(length)
                buffer.headerRoom = header
                buffer.count = header
                buffer.sequence = sequence
                if sparse.isHole(offset: offset, length: Int64(length)) {
                    // The whole hole is one item, whole chunks up to the next data (or the end).
                    let end = min(sparse.holeEnd, size)
                    let whole = end == size ? end - offset : (end - offset) / Int64(chunk) * Int64(chunk)
                    buffer.diskLength = max(Int64(length), whole)
                    buffer.kind = .zero
                } else {
                    let n = try source.read(into: UnsafeMutableRawBufferPointer(start: buffer.base + header, count: length), at: offset)
                    guard n == length else { throw BlockStreamError(.source, "\(source.name) ended at byte \(offset + Int64(n)), before its size \(size)") }
                    buffer.count = header + length
                    buffer.kind = .data
                }
                let advance = buffer.diskLength
                guard readQueue.push(buffer) else { readPool.give(buffer); return }
                offset += advance
                sequence += 1
            }
        }

        let encoder = OrderedStage(name: "encode", workers: settings.compressionWorkers, input: readQueue, outputPool: outputPool,
                                       needsOutput: { compress && $0.kind == .data }, failure: failure) {
            let context = compress ? ZstdFrameCompressor() : nil
            return { item, output in try Self.encode(item, output: output, compressor: context, held: held, algorithm: algorithm) }
        }

        // Runs of ZERO or SAME chunks go as one frame each.
        var pendingRun: (type: V1FrameType, offset: Int64, length: Int64)? = nil
        var journalBatch: [[UInt8]] = []
        var sent = start
        var changed: Int64 = 0
        func flushRun() throws {
            guard let run = pendingRun else { return }
            var frame = V1FrameHeader(type: run.type)
            frame.offset = UInt64(run.offset)
            frame.length = UInt64(run.length)
            try link.send(frame)
            pendingRun = nil
        }
        do {
            /// Adds one run of ZERO or SAME chunks to the pending frame.
            func extendRun(_ type: V1FrameType, at offset: Int64, length: Int64) throws {
                if let run = pendingRun, run.type == type, run.offset + run.length == offset, run.length < (1 << 40) {
                    pendingRun = (type, run.offset, run.length + length)
                } else {
                    try flushRun()
                    pendingRun = (type, offset, length)
                }
            }
            while let item = encoder.next() {
                switch item.kind {
                case .zero:
                    // One decision per zero run; per chunk only the digests (and whether the
                    // importer holds zeros there already).
                    var position = item.diskOffset
                    let end = item.diskOffset + item.diskLength
                    while position < end {
                        let length = min(Int64(chunk), end - position)
                        let zeros = algorithm.zeroChunkDigest(length: Int(length))
                        digest.add(chunkDigest: zeros)
                        journalBatch.append(zeros)
                        let same = held?.matches(chunk: position / Int64(chunk), zeros) == true
                        try extendRun(same ? .same : .zero, at: position, length: length)
                        if !same { changed += length }
                        position += length
                    }
                case .same:
                    digest.add(chunkDigest: item.digest)
                    journalBatch.append(item.digest)
                    try extendRun(.same, at: item.diskOffset, length: item.diskLength)
                default:
                    digest.add(chunkDigest: item.digest)
                    journalBatch.append(item.digest)
                    try flushRun()
                    try link.wire.send(item.bytes)
                    changed += item.diskLength
                }
                sent += item.diskLength
                reporter.bytesMoved.store(sent, ordering: .relaxed)
                item.release()
                if journalBatch.count >= 64 {
                    try journal?.append(journalBatch, durable: false)
                    journalBatch.removeAll(keepingCapacity: true)
                }
                if link.connection.hasIncomingData {
                    // The importer speaks mid-stream only to refuse (corrupt frame, full disk).
                    _ = try link.readReply(expecting: .final, what: "FINAL", peer: "the importer")
                    throw BlockStreamError(.protocolError, "gnt-move/1: the importer answered before the end of the stream")
                }
                if let abortAfter, sent >= abortAfter {
                    throw BlockStreamError(.stoppedAsAsked, "stopped after \(sent) bytes as asked (--abort-after)")
                }
            }
            try flushRun()
            try journal?.append(journalBatch, durable: false)
        } catch {
            failure.record(error)
        }
        reader.join()
        encoder.join()
        if let error = failure.error {
            try? journal?.append(journalBatch, durable: false)
            link.connection.abort()
            throw error
        }
        return changed
    }

    /// Worker step: detect zeros, checksum, skip what the importer holds, compress when it pays,
    /// and write the frame header.
    private static func encode(_ item: ChunkBuffer, output: ChunkBuffer?, compressor: ZstdFrameCompressor?, held: HeldDigests?,
                               algorithm: ChunkDigestAlgorithm) throws -> ChunkBuffer {
        let header = V1FrameHeader.size
        if item.kind == .data && isAllZero(item.payload) {
            item.kind = .zero
            item.count = header
        }
        // Zero runs (any length) are decided by the sender, chunk digests and all.
        if item.kind == .zero {
            output?.release()
            return item
        }
        item.digest = algorithm.digest(item.payload)
        if let held, held.matches(chunk: item.diskOffset / Int64(V1Protocol.chunkSize), item.digest) {
            item.kind = .same
            item.count = header
            output?.release()
            return item
        }
        var frame = V1FrameHeader(type: .data)
        frame.offset = UInt64(item.diskOffset)
        frame.length = UInt64(item.diskLength)
        frame.checksum = item.digest
        if let compressor, let output {
            output.count = header
            output.headerRoom = header
            let produced = try compressor.compress(item.payload, into: output.free)
            if produced < item.payload.count - item.payload.count / 64 {
                output.count += produced
                output.kind = .data
                output.diskOffset = item.diskOffset
                output.diskLength = item.diskLength
                output.digest = item.digest
                frame.codec = .zstd
                frame.payloadLength = UInt32(produced)
                frame.encode(into: output.base)
                item.release()
                return output
            }
            output.release()
        }
        frame.payloadLength = UInt32(item.payload.count)
        frame.encode(into: item.base)
        return item
    }
}

/// zstd level 1, one frame per chunk, for gnt-move/1.
final class ZstdFrameCompressor {
    private let context: OpaquePointer?

    init() {
        context = ZSTD_createCCtx()
        if let context { ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, CompressionMethod.zstdLevel) }
    }

    deinit { ZSTD_freeCCtx(context) }

    func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws(BlockStreamError) -> Int {
        let n = ZSTD_compress2(context, output.baseAddress, output.count, input.baseAddress, input.count)
        guard ZSTD_isError(n) == 0 else { throw BlockStreamError(.compression, "zstd: \(String(cString: ZSTD_getErrorName(n)))") }
        return n
    }

    /// Decompresses one whole frame; the result must be exactly `output.count` bytes.
    static func decompress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, context: OpaquePointer?) throws(BlockStreamError) -> Int {
        let n = ZSTD_decompressDCtx(context, output.baseAddress, output.count, input.baseAddress, input.count)
        guard ZSTD_isError(n) == 0 else { throw BlockStreamError(.integrity, "corrupt zstd frame: \(String(cString: ZSTD_getErrorName(n)))") }
        return n
    }
}
