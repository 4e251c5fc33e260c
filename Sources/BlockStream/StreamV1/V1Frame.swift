/// gnt-move's own stream, `gnt-move/1`, negotiated by ALPN inside the same mutually
/// authenticated TLS session that Ganeti's stream uses.
///
/// Every message is a 64-byte header, optionally followed by a payload:
///
///     0  "GM"   2  type   3  codec   4  reserved(4)
///     8  offset (u64 LE)  16 length (u64 LE)  24 payload length (u32 LE)  28 reserved(4)
///     32 checksum (32 bytes)
///
/// exporter → importer: HELLO (JSON payload), DATA (one 1 MiB-aligned chunk; checksum = the chunk
/// digest of its uncompressed bytes: BLAKE3 or SHA-256, see ``ChunkDigestAlgorithm``), ZERO (a run of zero bytes; no payload), END (length = disk size,
/// checksum = whole-disk digest), SAME (a run of chunks the importer already holds, by the
/// digests it sent; no payload).
/// importer → exporter: WELCOME (offset = where to resume), DIGESTS (when WELCOME says
/// `compare`: offset and length = the range covered, payload = the chunk digest of each chunk the
/// destination holds there, computed by the importer from its own disk), FINAL (checksum =
/// importer's whole-disk digest, sent only after its data is durable), ERROR (UTF-8 payload).
public enum V1Protocol {
    public static let alpn = "gnt-move/1"
    /// Chunks are the unit of the digest, of resume, and of zero detection.
    public static let chunkSize = 1 << 20
    static let maxPayload = chunkSize + chunkSize / 64 + 65536
}

enum V1FrameType: UInt8 {
    case hello = 1, data = 2, zero = 3, end = 4, same = 5
    case welcome = 0x11, final = 0x12, digests = 0x13, error = 0x1F
}

enum V1Codec: UInt8 {
    case raw = 0, zstd = 1
}

struct V1FrameHeader: Equatable {
    static let size = 64

    var type: V1FrameType
    var codec: V1Codec = .raw
    var offset: UInt64 = 0
    var length: UInt64 = 0
    var payloadLength: UInt32 = 0
    var checksum: [UInt8] = Array(repeating: 0, count: 32)

    func encode(into pointer: UnsafeMutableRawPointer) {
        pointer.initializeMemory(as: UInt8.self, repeating: 0, count: Self.size)
        pointer.storeBytes(of: 0x47, toByteOffset: 0, as: UInt8.self)
        pointer.storeBytes(of: 0x4D, toByteOffset: 1, as: UInt8.self)
        pointer.storeBytes(of: type.rawValue, toByteOffset: 2, as: UInt8.self)
        pointer.storeBytes(of: codec.rawValue, toByteOffset: 3, as: UInt8.self)
        pointer.storeBytes(of: offset.littleEndian, toByteOffset: 8, as: UInt64.self)
        pointer.storeBytes(of: length.littleEndian, toByteOffset: 16, as: UInt64.self)
        pointer.storeBytes(of: payloadLength.littleEndian, toByteOffset: 24, as: UInt32.self)
        for (i, byte) in checksum.prefix(32).enumerated() { pointer.storeBytes(of: byte, toByteOffset: 32 + i, as: UInt8.self) }
    }

    var encoded: [UInt8] {
        var bytes = [UInt8](repeating: 0, count: Self.size)
        bytes.withUnsafeMutableBytes { encode(into: $0.baseAddress!) }
        return bytes
    }

    static func decode(_ raw: UnsafeRawBufferPointer) throws(BlockStreamError) -> V1FrameHeader {
        guard raw.count == size, raw[0] == 0x47, raw[1] == 0x4D else {
            throw BlockStreamError(.protocolError, "gnt-move/1: invalid frame header (the stream is corrupt or not gnt-move/1)")
        }
        guard let type = V1FrameType(rawValue: raw[2]) else {
            throw BlockStreamError(.protocolError, "gnt-move/1: unknown frame type \(raw[2])")
        }
        guard let codec = V1Codec(rawValue: raw[3]) else {
            throw BlockStreamError(.protocolError, "gnt-move/1: unknown codec \(raw[3])")
        }
        let header = V1FrameHeader(
            type: type, codec: codec,
            offset: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)),
            length: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: 16, as: UInt64.self)),
            payloadLength: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: 24, as: UInt32.self)),
            checksum: Array(raw[32..<64]))
        guard Int(header.payloadLength) <= V1Protocol.maxPayload else {
            throw BlockStreamError(.protocolError, "gnt-move/1: frame payload of \(header.payloadLength) bytes exceeds the limit")
        }
        return header
    }
}
