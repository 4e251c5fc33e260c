/// `--compress`: Ganeti's names. Both ends must be given the same one.
public enum CompressionMethod: String, Sendable, CaseIterable, CustomStringConvertible {
    case none
    /// `gzip -1`, as Ganeti's `gzip` and `gzip-fast`.
    case gzip
    case gzipFast = "gzip-fast"
    /// `gzip` at its default level 6.
    case gzipSlow = "gzip-slow"
    /// zstd frames, readable by `zstd -d` on a Ganeti cluster that lists zstd.
    case zstd

    /// The accepted names, for messages that list them.
    public static let acceptedNames = allCases.map(\.rawValue).joined(separator: ", ")

    /// The name, so that messages say `gzip-fast`, not `gzipFast`.
    public var description: String { rawValue }

    var gzipLevel: Int32? {
        switch self {
        case .gzip, .gzipFast: return 1
        case .gzipSlow: return 6
        case .none, .zstd: return nil
        }
    }

    /// zstd level 1, as `zstd -1`.
    static let zstdLevel: Int32 = 1

    func makeCompressor() throws(BlockStreamError) -> (any ChunkCompressor)? {
        switch self {
        case .none: return nil
        case .gzip, .gzipFast, .gzipSlow: return try GzipChunkCompressor(level: gzipLevel ?? 1)
        case .zstd: return try ZstdChunkCompressor(level: Self.zstdLevel)
        }
    }

    func makeDecompressor() throws(BlockStreamError) -> (any StreamDecompressor)? {
        switch self {
        case .none: return nil
        case .gzip, .gzipFast, .gzipSlow: return try GzipStreamDecompressor()
        case .zstd: return try ZstdStreamDecompressor()
        }
    }

    /// Room a compressed chunk may need beyond its input size.
    static func worstCaseExpansion(_ size: Int) -> Int { size / 64 + 64 * 1024 }
}

/// Compresses whole chunks into self-contained gzip members or zstd frames. Concatenated, they
/// form one valid stream (`gzip -d` and `zstd -d` read members and frames back to back), which is
/// what lets several threads compress at once. One instance per thread.
protocol ChunkCompressor: AnyObject {
    func compress(_ input: UnsafeRawBufferPointer, into output: ChunkBuffer) throws(BlockStreamError)
}

/// Undoes a compressed stream incrementally, chunk boundaries unknown.
protocol StreamDecompressor: AnyObject {
    var formatName: String { get }
    /// Decompresses from `input` into `output`; returns how much of each was used.
    func step(input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) throws(BlockStreamError) -> (consumed: Int, produced: Int)
    /// True when everything so far ends exactly at the end of a member or frame.
    var atBoundary: Bool { get }
}
