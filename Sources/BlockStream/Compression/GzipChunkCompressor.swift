import CDeflate

/// One gzip member per chunk, with libdeflate (several times faster than zlib at level 1).
final class GzipChunkCompressor: ChunkCompressor {
    private let compressor: OpaquePointer

    init(level: Int32) throws(BlockStreamError) {
        guard let compressor = libdeflate_alloc_compressor(level) else {
            throw BlockStreamError(.configuration, "cannot create a gzip compressor at level \(level)")
        }
        self.compressor = compressor
    }

    deinit { libdeflate_free_compressor(compressor) }

    func compress(_ input: UnsafeRawBufferPointer, into output: ChunkBuffer) throws(BlockStreamError) {
        let free = output.free
        let size = libdeflate_gzip_compress(compressor, input.baseAddress, input.count, free.baseAddress, free.count)
        guard size > 0 else { throw BlockStreamError(.compression, "gzip output of a \(input.count)-byte chunk does not fit its buffer") }
        output.count += size
    }
}
