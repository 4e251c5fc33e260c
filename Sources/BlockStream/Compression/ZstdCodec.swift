import CZstd

/// One zstd frame per chunk, with a content checksum.
final class ZstdChunkCompressor: ChunkCompressor {
    private let context: OpaquePointer

    init(level: Int32) throws(BlockStreamError) {
        guard let context = ZSTD_createCCtx() else { throw BlockStreamError(.configuration, "cannot create a zstd context") }
        self.context = context
        ZSTD_CCtx_setParameter(context, ZSTD_c_compressionLevel, level)
        ZSTD_CCtx_setParameter(context, ZSTD_c_checksumFlag, 1)
    }

    deinit { ZSTD_freeCCtx(context) }

    func compress(_ input: UnsafeRawBufferPointer, into output: ChunkBuffer) throws(BlockStreamError) {
        let free = output.free
        let size = ZSTD_compress2(context, free.baseAddress, free.count, input.baseAddress, input.count)
        guard ZSTD_isError(size) == 0 else {
            throw BlockStreamError(.compression, "zstd compression failed: \(String(cString: ZSTD_getErrorName(size)))")
        }
        output.count += size
    }
}

/// zstd, any number of frames back to back.
final class ZstdStreamDecompressor: StreamDecompressor {
    private let stream: OpaquePointer
    private(set) var atBoundary = true
    let formatName = "zstd"

    init() throws(BlockStreamError) {
        guard let stream = ZSTD_createDStream() else { throw BlockStreamError(.configuration, "cannot create a zstd stream") }
        self.stream = stream
        ZSTD_initDStream(stream)
    }

    deinit { ZSTD_freeDStream(stream) }

    func step(input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) throws(BlockStreamError) -> (consumed: Int, produced: Int) {
        var inBuffer = ZSTD_inBuffer(src: input.baseAddress, size: input.count, pos: 0)
        var outBuffer = ZSTD_outBuffer(dst: output.baseAddress, size: output.count, pos: 0)
        let result = ZSTD_decompressStream(stream, &outBuffer, &inBuffer)
        guard ZSTD_isError(result) == 0 else {
            throw BlockStreamError(.compression, "received data is not valid zstd (\(String(cString: ZSTD_getErrorName(result)))); do both ends use the same --compress?")
        }
        if inBuffer.pos > 0 || outBuffer.pos > 0 { atBoundary = result == 0 }
        return (inBuffer.pos, outBuffer.pos)
    }
}
