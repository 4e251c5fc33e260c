import CZlib

/// gzip, any number of members back to back, with zlib.
final class GzipStreamDecompressor: StreamDecompressor {
    private var stream = z_stream()
    private(set) var atBoundary = true
    let formatName = "gzip"

    init() throws(BlockStreamError) {
        guard gnt_inflateInit2(&stream, 16 + 15) == Z_OK else {
            throw BlockStreamError(.configuration, "cannot initialise zlib")
        }
    }

    deinit { inflateEnd(&stream) }

    func step(input: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer) throws(BlockStreamError) -> (consumed: Int, produced: Int) {
        stream.next_in = UnsafeMutablePointer(mutating: input.baseAddress?.assumingMemoryBound(to: Bytef.self))
        stream.avail_in = uInt(input.count)
        stream.next_out = output.baseAddress?.assumingMemoryBound(to: Bytef.self)
        stream.avail_out = uInt(output.count)
        if input.count > 0 { atBoundary = false }
        let result = inflate(&stream, Z_NO_FLUSH)
        let consumed = input.count - Int(stream.avail_in)
        let produced = output.count - Int(stream.avail_out)
        switch result {
        case Z_STREAM_END:
            atBoundary = true
            inflateReset(&stream)
        case Z_OK, Z_BUF_ERROR:
            break
        default:
            let detail = stream.msg.map { String(cString: $0) } ?? "zlib error \(result)"
            throw BlockStreamError(.compression, "received data is not valid gzip (\(detail)); do both ends use the same --compress?")
        }
        return (consumed, produced)
    }
}
