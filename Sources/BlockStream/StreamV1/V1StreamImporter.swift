import CZstd
import OpenSSLSupport
#if canImport(Glibc)
import Glibc
#endif

/// The receiving side of gnt-move/1. Nothing is written before the magic and the destination's
/// size are checked; every chunk's checksum is verified before it is written; success is
/// reported only when the whole-disk digest equals the exporter's and the data is durable.
struct V1StreamImporter {
    let settings: StreamSettings
    let reporter: StatusReporter
    let journalPath: String?
    let targetIsZero: Bool
    /// The destination holds an earlier copy (a warm move's later pass, a transfer continued
    /// into a half-imported disk): offer its chunk digests, so that only what differs is sent.
    var compare = false
    /// The digests of what the destination holds, kept from the previous pass of a warm import
    /// (the chunks it verified and wrote itself): used instead of reading the disk again.
    var knownHeld: HeldDigests?
    /// A warm import (`--warm`) takes pre-copy passes of a running source; any other refuses one,
    /// so that a copy read while the source ran never ends an import as if it were final.
    var acceptsPrecopy = false
    let binding: (Int64) throws -> TransferJournal.Binding
    /// How often the importer makes data durable and extends the journal.
    static let durabilityInterval = 1.0

    /// What one pass achieved: the whole-disk digest both ends agreed on, and whether the
    /// exporter called it the final pass (a warm move's pre-copy passes are not).
    struct Pass {
        /// Rendered: `blake3-chunks-1m:<hex>`.
        var digest: String
        var final: Bool
        /// The digest of every chunk the destination now holds.
        var held: HeldDigests?
    }

    func run(connection: TLSConnection, sink: BlockSink) throws -> Pass {
        let link = V1Connection(connection, limiter: nil)
        let helloHeader = try link.readHeader(expecting: "HELLO")
        guard helloHeader.type == .hello else { throw BlockStreamError(.protocolError, "gnt-move/1: expected HELLO") }
        let hello = try V1Control.decode(V1Hello.self, try link.readPayload(helloHeader), what: "HELLO")
        do {
            let digest = try receive(hello: hello, link: link, sink: sink)
            return Pass(digest: digest.rendered, final: hello.final ?? true,
                        held: digest.retained.map { HeldDigests(firstChunk: 0, flat: $0, algorithm: digest.algorithm) })
        } catch let error as BlockStreamError where error.kind != .truncated {
            // Tell the exporter why, then close gracefully so that the message is not lost to
            // a reset; the exporter checks for it between frames and stops.
            link.sendError(error.message)
            try? connection.sendCloseNotify()
            _ = connection.awaitPeerClose(timeout: 10)
            connection.closeSocket()
            throw error
        } catch {
            connection.abort()
            throw error
        }
    }

    private func receive(hello: V1Hello, link: V1Connection, sink: BlockSink) throws -> DiskDigest {
        guard hello.magic == settings.magic else {
            throw BlockStreamError(.magic, "Magic value mismatch: the exporter sent a different magic (wrong peer or wrong disk)")
        }
        guard hello.final != false || acceptsPrecopy else {
            throw BlockStreamError(.configuration, "the exporter sends a pre-copy pass of a warm move (read while the source runs), but this import is not warm (--warm); refusing it, nothing was written")
        }
        guard hello.chunk_size == V1Protocol.chunkSize, hello.size >= 0 else {
            throw BlockStreamError(.protocolError, "gnt-move/1: unsupported chunk size \(hello.chunk_size)")
        }
        if let capacity = sink.deviceSize, capacity < hello.size {
            throw BlockStreamError(.destination, "destination \(sink.name) (\(capacity) bytes) is smaller than the source (\(hello.size) bytes)")
        }
        if let allotted = sink.allottedSize, allotted < hello.size {
            throw BlockStreamError(.beyondDestination, "the source (\(hello.size) bytes) is larger than the \(allotted) bytes allotted to destination \(sink.name) (--expected-size); nothing was written")
        }
        // The chunk digest: the best both ends know, or the one of the journal being resumed.
        let journalAlgorithm = hello.resume ? journalPath.flatMap(TransferJournal.recordedAlgorithm(path:)) : nil
        let algorithm = try ChunkDigestAlgorithm.choose(from: hello.digests, preferring: journalAlgorithm, only: settings.chunkDigest)
        // A warm import keeps every chunk digest for the next pass.
        var digest = DiskDigest(algorithm, retaining: compare || hello.final == false)
        var journal: JournalSlot?
        var offset: Int64 = 0
        var transfer = try binding(hello.size)
        transfer.digest = TransferJournal.Binding.name(of: algorithm)
        /// The binding, with the destination as it is now (its device and inode once it exists).
        let bound = { [sink] () -> TransferJournal.Binding in
            var binding = transfer
            binding.destination = sink.path
            if let identity = sink.identity { (binding.destination_device, binding.destination_inode) = (identity.device, identity.inode) }
            return binding
        }
        var resumeFrom: TransferJournal?
        if hello.resume {
            guard let journalPath else { throw BlockStreamError(.journal, "--resume needs a journal, but this importer keeps none (no status file)") }
            do {
                resumeFrom = try TransferJournal.open(path: journalPath, expected: bound())
                if resumeFrom == nil && !compare {
                    throw BlockStreamError(.journal, "--resume was asked, but there is no journal \(journalPath) for this transfer")
                }
            } catch let error as BlockStreamError where error.kind == .journalOfAnotherDestination {
                // Its records describe another file's or device's blocks: never trust them here.
                reporter.log("\(error.message); not resuming from it: receiving the whole disk again")
                TransferJournal.discard(path: journalPath)
            }
        }
        if let existing = resumeFrom, let journalPath {
            let records = existing.records
            try existing.replay(records) { digest.add(chunkDigest: $0) }
            offset = min(records * Int64(V1Protocol.chunkSize), hello.size)
            journal = JournalSlot(existing: existing)
            reporter.log("resuming at byte \(offset) of \(hello.size) from journal \(journalPath)")
            reporter.update { $0.resume_offset = offset }
        } else if let journalPath {
            // A fresh transfer: an old journal must not outlive it. The new one is created with
            // the first durable records, when the destination exists and can be bound.
            try TransferJournal.refuseSymlink(journalPath)
            TransferJournal.discard(path: journalPath)
            journal = JournalSlot { try TransferJournal.create(path: journalPath, binding: bound()) }
        }
        // What this destination already holds is digested here, from its own disk; the exporter
        // only learns which chunks it may skip.
        var held: HeldDigests?
        if compare, hello.compare == true, offset < hello.size, let path = sink.path, access(path, F_OK) == 0 {
            let started = Monotonic.now()
            if let known = knownHeld?.covering(from: offset, size: hello.size), known.algorithm == algorithm {
                held = known
            } else {
                held = try HeldDigests.compute(path: path, from: offset, size: hello.size, algorithm: algorithm)
                reporter.log("digested the \(hello.size - offset) bytes the destination holds from byte \(offset) in \(String(format: "%.2f", Monotonic.now() - started)) s; only chunks that differ will be sent")
            }
        }
        let welcome = V1Welcome(offset: offset, compare: held == nil ? nil : true, digest: hello.digests == nil ? nil : algorithm.rawValue)
        try link.send(V1FrameHeader(type: .welcome), payload: V1Control.encode(welcome))
        try held?.send(on: link, size: hello.size)
        reporter.bytesMoved.store(offset, ordering: .relaxed)

        let end = try pipeline(link: link, sink: sink, from: offset, size: hello.size, digest: &digest, journal: journal, held: held)
        guard MessageAuthentication.constantTimeEqual(end.checksum, digest.value) else {
            throw BlockStreamError(.integrity, "whole-disk digest mismatch: received data gives \(digest.rendered), the exporter's source gives \(algorithm.render(end.checksum))")
        }
        var final = V1FrameHeader(type: .final)
        final.length = UInt64(hello.size)
        final.checksum = digest.value
        try link.send(final)
        _ = link.connection.awaitPeerClose(timeout: 30)
        link.connection.closeSocket()
        return digest
    }

    /// Receives frames until END; returns the END header.
    private func pipeline(link: V1Connection, sink: BlockSink, from start: Int64, size: Int64,
                          digest: inout DiskDigest, journal: JournalSlot?, held: HeldDigests?) throws -> V1FrameHeader {
        let algorithm = digest.algorithm
        let failure = PipelineFailure()
        let receivePool = BufferPool(buffers: StreamSettings.buffersPerStage + 2, capacity: V1Protocol.maxPayload)
        let decodedPool = BufferPool(buffers: StreamSettings.buffersPerStage + 2, capacity: V1Protocol.chunkSize)
        let receiveQueue = BlockingQueue<ChunkBuffer>(capacity: StreamSettings.buffersPerStage)
        failure.onStop { receivePool.close(); decodedPool.close(); receiveQueue.close() }

        let decoder = OrderedStage(name: "decode", workers: 2, input: receiveQueue, outputPool: decodedPool,
                                   needsOutput: { $0.kind == .data && $0.headerRoom == 1 }, failure: failure) {
            let context = DecompressionContext()
            return { item, output in try Self.decode(item, output: output, context: context, algorithm: algorithm) }
        }

        // The writer consumes decoded chunks in order on its own thread.
        let writerState = WriterState(next: start, digest: digest)
        let keeper = DurabilityKeeper(sink: sink, journal: journal, interval: Self.durabilityInterval)
        let writer = startStage("write", failure: failure) { [reporter, targetIsZero] in
            var finished = false
            defer {
                // After a broken stream, what was written and verified is made durable and
                // journaled all the same, so that a resume skips it.
                do { try keeper.finish() } catch { if finished { failure.record(error) } }
            }
            while let item = decoder.next() {
                defer { item.release() }
                if item.kind == .end { break }
                guard item.diskOffset == writerState.next else {
                    throw BlockStreamError(.protocolError, "gnt-move/1: frame for byte \(item.diskOffset) arrived where byte \(writerState.next) was expected")
                }
                let (itemEnd, overflow) = item.diskOffset.addingReportingOverflow(item.diskLength)
                guard !overflow, itemEnd <= size else {
                    throw BlockStreamError(.protocolError, "gnt-move/1: frame runs past the end of the disk (\(size) bytes)")
                }
                var digests: [[UInt8]] = []
                if item.kind == .same {
                    // Nothing is written: the destination holds these chunks already, by its own digests.
                    var chunk = item.diskOffset / Int64(V1Protocol.chunkSize)
                    while chunk * Int64(V1Protocol.chunkSize) < itemEnd {
                        guard let own = held?.digest(chunk: chunk) else {
                            throw BlockStreamError(.protocolError, "gnt-move/1: SAME frame at byte \(item.diskOffset) for chunks this importer holds no digest of")
                        }
                        digests.append(own)
                        chunk += 1
                    }
                } else if item.kind == .zero {
                    try sink.writeZeros(at: item.diskOffset, length: item.diskLength, targetIsZero: targetIsZero)
                    var position = item.diskOffset
                    while position < item.diskOffset + item.diskLength {
                        let length = Int(min(Int64(V1Protocol.chunkSize), item.diskOffset + item.diskLength - position))
                        digests.append(algorithm.zeroChunkDigest(length: length))
                        position += Int64(length)
                    }
                } else {
                    try sink.write(item.bytes, at: item.diskOffset)
                    digests.append(item.digest)
                }
                for chunkDigest in digests { writerState.digest.add(chunkDigest: chunkDigest) }
                keeper.written(digests)
                writerState.next += item.diskLength
                reporter.bytesMoved.store(writerState.next, ordering: .relaxed)
            }
            guard failure.error == nil else { return }
            guard writerState.next == size else {
                throw BlockStreamError(.truncated, "gnt-move/1: the stream ended at byte \(writerState.next) of \(size)")
            }
            try sink.extend(to: size)
            try sink.flush()
            finished = true
        }

        var endHeader: V1FrameHeader?
        var sequence = 0
        do {
            receiving: while failure.error == nil {
                // Wait without blocking in a read, so that a failure of a later stage (a corrupt
                // chunk, a full disk) ends the loop even when the exporter has gone quiet.
                while !link.connection.hasIncomingData {
                    if failure.error != nil { break receiving }
                    link.connection.waitReadable(timeout: 0.2)
                }
                let frame = try link.readHeader(expecting: "a frame")
                let (frameOffset, frameLength) = try Self.checkedRange(frame, size: size)
                guard let item = receivePool.take() else { break }
                item.sequence = sequence
                sequence += 1
                item.diskOffset = frameOffset
                item.diskLength = frameLength
                switch frame.type {
                case .data:
                    guard frame.length > 0, frame.length <= UInt64(V1Protocol.chunkSize), frame.payloadLength > 0 else {
                        item.release()
                        throw BlockStreamError(.protocolError, "gnt-move/1: invalid DATA frame at byte \(frame.offset)")
                    }
                    let n = try link.connection.readFully(into: UnsafeMutableRawBufferPointer(start: item.base, count: Int(frame.payloadLength)))
                    guard n == Int(frame.payloadLength) else {
                        item.release()
                        throw BlockStreamError(.truncated, "gnt-move/1: truncated frame at byte \(frame.offset)")
                    }
                    item.count = n
                    item.kind = .data
                    item.digest = frame.checksum
                    item.headerRoom = frame.codec == .zstd ? 1 : 0
                case .zero:
                    item.kind = .zero
                case .same:
                    guard held != nil, frameOffset % Int64(V1Protocol.chunkSize) == 0,
                          frameLength % Int64(V1Protocol.chunkSize) == 0 || frameOffset + frameLength == size else {
                        item.release()
                        throw BlockStreamError(.protocolError, "gnt-move/1: SAME frame at byte \(frame.offset) of length \(frame.length) where no chunk digests were offered or not on chunk boundaries")
                    }
                    item.kind = .same
                case .end:
                    item.kind = .end
                    endHeader = frame
                    guard receiveQueue.push(item) else { item.release(); break receiving }
                    break receiving
                default:
                    item.release()
                    throw BlockStreamError(.protocolError, "gnt-move/1: unexpected frame type \(frame.type.rawValue) in the data")
                }
                guard receiveQueue.push(item) else { item.release(); break }
            }
        } catch {
            failure.record(error)
        }
        receiveQueue.close()
        decoder.join()
        writer.join()
        digest = writerState.digest
        if let error = failure.error { throw error }
        guard let endHeader else { throw BlockStreamError(.truncated, "gnt-move/1: the stream ended without END") }
        guard endHeader.length == UInt64(size) else {
            throw BlockStreamError(.protocolError, "gnt-move/1: END announces \(endHeader.length) bytes, HELLO \(size)")
        }
        return endHeader
    }

    /// The disk range a DATA or ZERO frame covers, refused (with one error that names the frame)
    /// when it does not lie inside the disk announced by HELLO. The frame's fields come from the
    /// peer: every sum is checked for overflow.
    static func checkedRange(_ frame: V1FrameHeader, size: Int64) throws(BlockStreamError) -> (offset: Int64, length: Int64) {
        guard frame.type == .data || frame.type == .zero || frame.type == .same else { return (0, 0) }
        let name = frame.type == .data ? "DATA" : frame.type == .zero ? "ZERO" : "SAME"
        guard let offset = Int64(exactly: frame.offset), let length = Int64(exactly: frame.length) else {
            throw BlockStreamError(.protocolError, "gnt-move/1: \(name) frame at byte \(frame.offset) of length \(frame.length) lies beyond the end of the disk (\(size) bytes)")
        }
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= size else {
            throw BlockStreamError(.protocolError, "gnt-move/1: \(name) frame at byte \(offset) of length \(length) lies beyond the end of the disk (\(size) bytes)")
        }
        guard length > 0 else {
            throw BlockStreamError(.protocolError, "gnt-move/1: empty \(name) frame at byte \(offset)")
        }
        return (offset, length)
    }

    /// Worker step: decompress if needed and verify the chunk's checksum.
    private static func decode(_ item: ChunkBuffer, output: ChunkBuffer?, context: DecompressionContext,
                               algorithm: ChunkDigestAlgorithm) throws -> ChunkBuffer {
        guard item.kind == .data else {
            output?.release()
            return item
        }
        var plain = item
        if item.headerRoom == 1 {
            guard let output else { throw BlockStreamError(.configuration, "decoding without an output buffer") }
            let n = try ZstdFrameCompressor.decompress(item.bytes, into: UnsafeMutableRawBufferPointer(start: output.base, count: Int(item.diskLength)),
                                                       context: context.pointer)
            guard n == Int(item.diskLength) else {
                output.release()
                throw BlockStreamError(.integrity, "corrupted frame at byte \(item.diskOffset): it decompresses to \(n) bytes, not \(item.diskLength)")
            }
            output.count = n
            output.kind = .data
            output.diskOffset = item.diskOffset
            output.diskLength = item.diskLength
            output.digest = item.digest
            item.release()
            plain = output
        } else {
            output?.release()
            guard item.count == Int(item.diskLength) else {
                throw BlockStreamError(.integrity, "corrupted frame at byte \(item.diskOffset): \(item.count) payload bytes for \(item.diskLength) disk bytes")
            }
        }
        plain.headerRoom = 0
        let actual = algorithm.digest(plain.bytes)
        guard MessageAuthentication.constantTimeEqual(actual, plain.digest) else {
            throw BlockStreamError(.integrity, "corrupted frame at byte \(plain.diskOffset): checksum mismatch")
        }
        return plain
    }
}

/// The writer thread's running position and digest, read back by the receiving thread after
/// the writer has been joined.
private final class WriterState: @unchecked Sendable {
    var next: Int64
    var digest: DiskDigest
    init(next: Int64, digest: DiskDigest) {
        self.next = next
        self.digest = digest
    }
}

/// One zstd decompression context per worker thread.
final class DecompressionContext {
    let pointer: OpaquePointer?
    init() { pointer = ZSTD_createDCtx() }
    deinit { ZSTD_freeDCtx(pointer) }
}
