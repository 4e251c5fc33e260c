import CBlake3
import OpenSSLSupport

/// How gnt-move/1 checksums each 1 MiB chunk, and the whole disk over those checksums.
///
/// The exporter offers what it can compute in HELLO (`digests`, best first); the importer picks
/// one and names it in WELCOME (`digest`). A peer that names nothing predates the choice and
/// uses SHA-256, so older ends keep working. Both algorithms give 32 bytes, the size of a frame's
/// checksum field and of a journal record.
///
/// BLAKE3 is a cryptographic hash like SHA-256, and several times faster on one core (about
/// 6 GB/s with AVX-512 against 1.8 GB/s for SHA-256 with SHA-NI on the benchmark machine), which
/// matters because both ends hash every byte they move.
public enum ChunkDigestAlgorithm: String, Codable, CaseIterable, Sendable {
    case blake3
    case sha256

    /// What this build offers, best first.
    public static let offered: [ChunkDigestAlgorithm] = [.blake3, .sha256]
    /// What a peer that names no algorithm uses.
    static let legacy = ChunkDigestAlgorithm.sha256

    /// What an exporter offers: `only` (`--chunk-digest`), or everything it knows.
    static func offer(only: ChunkDigestAlgorithm?) -> [ChunkDigestAlgorithm] { only.map { [$0] } ?? offered }

    /// The importer's choice from the exporter's offer (nil: an exporter that predates the
    /// choice, which computes SHA-256). `only` (`--chunk-digest`) must be offered; otherwise
    /// `preferring` (the algorithm of a journal being resumed) wins when offered, then the best.
    static func choose(from offer: [String]?, preferring: ChunkDigestAlgorithm? = nil,
                       only: ChunkDigestAlgorithm? = nil) throws(BlockStreamError) -> ChunkDigestAlgorithm {
        let offered = offer.map { $0.compactMap(ChunkDigestAlgorithm.init(rawValue:)) } ?? [legacy]
        if let only {
            guard offered.contains(only) else {
                throw BlockStreamError(.configuration, "the exporter does not offer \(only.rawValue) chunk digests, which this importer requires (--chunk-digest); it offers \(offered.isEmpty ? "none this importer knows" : offered.map(\.rawValue).joined(separator: ", "))")
            }
            return only
        }
        if let preferring, offered.contains(preferring) { return preferring }
        return Self.offered.first(where: offered.contains) ?? legacy
    }

    /// The algorithm a WELCOME names (none: an importer that predates the choice, which uses
    /// SHA-256), which must be one the exporter offered.
    static func named(_ name: String?, offered: [ChunkDigestAlgorithm]) throws(BlockStreamError) -> ChunkDigestAlgorithm {
        guard let name else {
            guard offered.contains(legacy) else {
                throw BlockStreamError(.configuration, "the importer does not choose chunk digests (an older gnt-move) and uses \(legacy.rawValue), which --chunk-digest \(offered.map(\.rawValue).joined(separator: ",")) excludes")
            }
            return legacy
        }
        guard let algorithm = ChunkDigestAlgorithm(rawValue: name), offered.contains(algorithm) else {
            throw BlockStreamError(.protocolError, "gnt-move/1: the importer chose chunk digest '\(name.prefix(40))', which this exporter did not offer")
        }
        return algorithm
    }

    /// The 32-byte digest of one buffer.
    func digest(_ bytes: UnsafeRawBufferPointer) -> [UInt8] {
        switch self {
        case .sha256:
            return IncrementalDigest.sha256(bytes)
        case .blake3:
            var hasher = blake3_hasher()
            blake3_hasher_init(&hasher)
            blake3_hasher_update(&hasher, bytes.baseAddress, bytes.count)
            return RunningDigest.finalize(&hasher)
        }
    }

    /// The digest of a whole chunk of zeros, computed once per algorithm.
    var zeroChunk: [UInt8] {
        switch self {
        case .sha256: Self.zeroChunkSHA256
        case .blake3: Self.zeroChunkBLAKE3
        }
    }

    private static let zeroChunkSHA256 = zeroDigest(.sha256, length: V1Protocol.chunkSize)
    private static let zeroChunkBLAKE3 = zeroDigest(.blake3, length: V1Protocol.chunkSize)

    private static func zeroDigest(_ algorithm: ChunkDigestAlgorithm, length: Int) -> [UInt8] {
        let zeros = [UInt8](repeating: 0, count: length)
        return zeros.withUnsafeBytes { algorithm.digest($0) }
    }

    /// The digest of `length` zero bytes (a whole chunk, or the shorter last one).
    func zeroChunkDigest(length: Int) -> [UInt8] {
        length == V1Protocol.chunkSize ? zeroChunk : Self.zeroDigest(self, length: length)
    }

    /// How a whole-disk digest is written: `blake3-chunks-1m:<hex>`.
    func render(_ digest: [UInt8]) -> String { "\(rawValue)-chunks-1m:" + Hex.encode(digest) }
}

/// SHA-256 or BLAKE3, fed piece by piece; one owner at a time.
final class RunningDigest {
    private enum State {
        case sha256(IncrementalDigest)
        case blake3(UnsafeMutablePointer<blake3_hasher>)
    }

    private let state: State

    init(_ algorithm: ChunkDigestAlgorithm) {
        switch algorithm {
        case .sha256:
            state = .sha256(IncrementalDigest(.sha256))
        case .blake3:
            let hasher = UnsafeMutablePointer<blake3_hasher>.allocate(capacity: 1)
            blake3_hasher_init(hasher)
            state = .blake3(hasher)
        }
    }

    deinit { if case .blake3(let hasher) = state { hasher.deallocate() } }

    func update(_ bytes: [UInt8]) {
        switch state {
        case .sha256(let digest): digest.update(bytes)
        case .blake3(let hasher): bytes.withUnsafeBytes { blake3_hasher_update(hasher, $0.baseAddress, $0.count) }
        }
    }

    /// The digest of everything so far; updating can go on.
    func snapshot() -> [UInt8] {
        switch state {
        case .sha256(let digest): return digest.snapshot()
        case .blake3(let hasher): return Self.finalize(hasher)
        }
    }

    /// BLAKE3's 32-byte output; the hasher is left as it was.
    static func finalize(_ hasher: UnsafePointer<blake3_hasher>) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        out.withUnsafeMutableBytes { blake3_hasher_finalize(hasher, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), 32) }
        return out
    }
}
