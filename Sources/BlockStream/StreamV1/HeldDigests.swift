import Foundation
import OpenSSLSupport
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The digest (``ChunkDigestAlgorithm``) of each chunk a destination already holds, from chunk `firstChunk` to the end of
/// the disk: computed by the importer from its own disk (never taken from the exporter), sent in
/// DIGESTS frames, and compared by the exporter with the digest of what it reads. A chunk whose
/// digests agree travels as SAME; the whole-disk digest still decides success, so a chunk wrongly
/// called the same fails the transfer.
///
/// 32 bytes per MiB of disk are held in memory on each side (32 MiB for a 1 TiB disk).
/// A hypervisor's dirty-block bitmap could later tell the exporter which chunks to read at all;
/// this type is where such a map would meet the destination's digests.
struct HeldDigests: Sendable {
    let firstChunk: Int64
    private(set) var flat: [UInt8]
    let algorithm: ChunkDigestAlgorithm

    static let perFrame = 2048
    var count: Int64 { Int64(flat.count / TransferJournal.recordSize) }

    /// The held digest of chunk `index` equals `digest`.
    func matches(chunk index: Int64, _ digest: [UInt8]) -> Bool {
        let position = index - firstChunk
        guard position >= 0, position < count, digest.count == TransferJournal.recordSize else { return false }
        let start = Int(position) * TransferJournal.recordSize
        return flat[start..<(start + TransferJournal.recordSize)].elementsEqual(digest)
    }

    /// The held digest of chunk `index`.
    func digest(chunk index: Int64) -> [UInt8]? {
        let position = index - firstChunk
        guard position >= 0, position < count else { return nil }
        let start = Int(position) * TransferJournal.recordSize
        return Array(flat[start..<(start + TransferJournal.recordSize)])
    }

    /// These digests from the chunk at `offset` on, if they cover exactly the rest of a disk of
    /// `size` bytes.
    func covering(from offset: Int64, size: Int64) -> HeldDigests? {
        let range = Self.chunks(from: offset, size: size)
        guard firstChunk <= range.lowerBound, firstChunk + count == range.upperBound else { return nil }
        let start = Int(range.lowerBound - firstChunk) * TransferJournal.recordSize
        return HeldDigests(firstChunk: range.lowerBound, flat: Array(flat[start...]), algorithm: algorithm)
    }

    static func chunks(from offset: Int64, size: Int64) -> Range<Int64> {
        let chunk = Int64(V1Protocol.chunkSize)
        return (offset / chunk)..<((size + chunk - 1) / chunk)
    }

    /// Reads the destination at `path` from `offset` (chunk-aligned) to `size` and digests every
    /// chunk, two threads at a time; holes are digested as zeros without reading, and bytes past
    /// the end of a shorter file count as zeros (the importer extends it to the disk's size).
    static func compute(path: String, from offset: Int64, size: Int64, algorithm: ChunkDigestAlgorithm) throws(BlockStreamError) -> HeldDigests {
        let source = try BlockSource(path: path)
        let range = chunks(from: offset, size: size)
        let total = Int(range.count)
        var flat = [UInt8](repeating: 0, count: total * TransferJournal.recordSize)
        let batch = 64
        let batches = (total + batch - 1) / batch
        let failure = Mutex<BlockStreamError?>(nil)
        flat.withUnsafeMutableBytes { output in
            let base = UncheckedPointer(output.baseAddress)
            DispatchQueue.concurrentPerform(iterations: max(batches, 1)) { part in
                guard batches > 0 else { return }
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: V1Protocol.chunkSize, alignment: 4096)
                defer { buffer.deallocate() }
                var sparse = SparseMap(fd: source.fd, size: source.size ?? 0)
                for position in (part * batch)..<min((part + 1) * batch, total) {
                    let start = (range.lowerBound + Int64(position)) * Int64(V1Protocol.chunkSize)
                    let length = Int(min(Int64(V1Protocol.chunkSize), size - start))
                    let fileBytes = max(0, min(Int64(length), (source.size ?? 0) - start))
                    let digest: [UInt8]
                    if fileBytes == 0 || sparse.isHole(offset: start, length: Int64(length)) && fileBytes == length {
                        digest = algorithm.zeroChunkDigest(length: length)
                    } else {
                        let slice = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<length])
                        do {
                            let n = try source.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[0..<Int(fileBytes)]), at: start)
                            if n < length { (slice.baseAddress! + n).initializeMemory(as: UInt8.self, repeating: 0, count: length - n) }
                        } catch {
                            failure.withLock { $0 = $0 ?? (error as? BlockStreamError) ?? BlockStreamError(.source, "\(error)") }
                            return
                        }
                        digest = algorithm.digest(UnsafeRawBufferPointer(slice))
                    }
                    digest.withUnsafeBytes { (base.pointer! + position * TransferJournal.recordSize).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
                }
            }
        }
        if let error = failure.withLock({ $0 }) { throw error }
        return HeldDigests(firstChunk: range.lowerBound, flat: flat, algorithm: algorithm)
    }

    /// Sends the digests in DIGESTS frames of up to ``perFrame`` chunks each.
    func send(on link: V1Connection, size: Int64) throws(TLSError) {
        let chunk = Int64(V1Protocol.chunkSize)
        var position = 0
        while position < Int(count) {
            let n = min(Self.perFrame, Int(count) - position)
            var frame = V1FrameHeader(type: .digests)
            let start = (firstChunk + Int64(position)) * chunk
            frame.offset = UInt64(start)
            frame.length = UInt64(min(Int64(n) * chunk, size - start))
            let bytes = Array(flat[(position * TransferJournal.recordSize)..<((position + n) * TransferJournal.recordSize)])
            try link.send(frame, payload: bytes)
            position += n
        }
    }

    /// Reads the importer's DIGESTS for every chunk from `offset` to `size`, each frame checked to
    /// continue where the last one ended.
    static func receive(on link: V1Connection, from offset: Int64, size: Int64, algorithm: ChunkDigestAlgorithm) throws -> HeldDigests {
        let range = chunks(from: offset, size: size)
        var flat: [UInt8] = []
        flat.reserveCapacity(Int(range.count) * TransferJournal.recordSize)
        let chunk = Int64(V1Protocol.chunkSize)
        var next = range.lowerBound
        while next < range.upperBound {
            let (frame, payload) = try link.readReply(expecting: .digests, what: "DIGESTS", peer: "the importer")
            let expected = min(Int64(perFrame), range.upperBound - next)
            guard frame.offset == UInt64(next * chunk), payload.count == Int(expected) * TransferJournal.recordSize else {
                throw BlockStreamError(.protocolError, "gnt-move/1: DIGESTS frame at byte \(frame.offset) with \(payload.count) bytes does not continue the digests at byte \(next * chunk)")
            }
            flat += payload
            next += expected
        }
        return HeldDigests(firstChunk: range.lowerBound, flat: flat, algorithm: algorithm)
    }
}

/// A raw pointer handed to the worker threads of `concurrentPerform`, each writing its own range.
private struct UncheckedPointer: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer?
    init(_ pointer: UnsafeMutableRawPointer?) { self.pointer = pointer }
}
