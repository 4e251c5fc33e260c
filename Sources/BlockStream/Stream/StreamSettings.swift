/// Settings both stream formats share.
public struct StreamSettings: Sendable, Equatable {
    /// 1 MiB, Ganeti's `dd bs=1048576`: large enough that per-chunk costs vanish.
    public static let defaultChunkSize = 1 << 20

    public var compression: CompressionMethod
    /// The magic, or nil for none.
    public var magic: String?
    public var chunkSize: Int
    /// Threads that compress on the exporter (chunks are compressed independently).
    public var compressionWorkers: Int
    /// How long an exporter waits, after its last byte, for the importer to confirm.
    public var confirmationTimeout: Double
    /// gnt-move/1's chunk checksum when it must be this one (`--chunk-digest`); nil: the best
    /// both ends know.
    public var chunkDigest: ChunkDigestAlgorithm?

    public init(compression: CompressionMethod = .none, magic: String? = nil, chunkSize: Int = StreamSettings.defaultChunkSize,
                compressionWorkers: Int = 2, confirmationTimeout: Double = 3600) {
        self.compression = compression
        self.magic = magic
        self.chunkSize = chunkSize
        self.compressionWorkers = compressionWorkers
        self.confirmationTimeout = confirmationTimeout
    }

    /// Buffers in flight per stage: enough to keep every stage busy, few enough that a stream
    /// stays far below 64 MiB whatever the disk size.
    static let buffersPerStage = 6
}
