import Foundation
import OpenSSLSupport

/// HELLO: what the exporter is about to send.
struct V1Hello: Codable, Equatable {
    var version = 1
    var magic: String?
    var size: Int64
    var chunk_size: Int
    var resume: Bool
    /// The exporter reads DIGESTS and sends SAME for chunks the importer already holds (absent
    /// from exporters that predate it).
    var compare: Bool? = nil
    /// False for a pre-copy pass of a warm move: the importer waits for another pass after it.
    var final: Bool? = nil
    /// The chunk digests the exporter can compute, best first (``ChunkDigestAlgorithm``; absent
    /// from exporters that only know SHA-256).
    var digests: [String]? = nil
}

/// WELCOME: where the exporter starts.
struct V1Welcome: Codable, Equatable {
    var offset: Int64
    /// DIGESTS of what the destination holds from `offset` on follow this message.
    var compare: Bool? = nil
    /// The chunk digest the importer chose from the HELLO's offer (absent: SHA-256).
    var digest: String? = nil
}

/// Reading and writing control messages (HELLO, WELCOME, FINAL, ERROR) on a connection.
enum V1Control {
    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        Array((try? JSONEncoder().encode(value)) ?? Data())
    }

    static func decode<T: Decodable>(_ type: T.Type, _ payload: [UInt8], what: String) throws(BlockStreamError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(payload))
        } catch {
            throw BlockStreamError(.protocolError, "gnt-move/1: malformed \(what) message")
        }
    }
}

/// The digest (``ChunkDigestAlgorithm``) over the digest of each 1 MiB chunk, in order: the same
/// value whether a chunk travelled as data or as zeros, and computable from a journal of chunk
/// digests when resuming.
struct DiskDigest {
    let algorithm: ChunkDigestAlgorithm
    private let outer: RunningDigest
    private(set) var chunks: Int64 = 0
    /// Every chunk digest added, in order, when asked to keep them (32 bytes per chunk).
    private(set) var retained: [UInt8]?

    init(_ algorithm: ChunkDigestAlgorithm, retaining: Bool = false) {
        self.algorithm = algorithm
        outer = RunningDigest(algorithm)
        retained = retaining ? [] : nil
    }

    mutating func add(chunkDigest: [UInt8]) {
        outer.update(chunkDigest)
        chunks += 1
        retained?.append(contentsOf: chunkDigest)
    }

    var value: [UInt8] { outer.snapshot() }

    /// `value` as the status file and the logs show it: `blake3-chunks-1m:<hex>`.
    var rendered: String { algorithm.render(value) }
}
