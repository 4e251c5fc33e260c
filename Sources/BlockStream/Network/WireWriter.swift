import OpenSSLSupport

/// Sends bytes on a TLS connection, paced by `--bwlimit` when one is set.
struct WireWriter {
    let connection: TLSConnection
    let limiter: BandwidthLimiter?
    /// Counts what is sent, for the status file.
    var counter: StatusReporter? = nil
    /// Slices are small enough that pacing stays smooth at low rates.
    static let slice = 256 * 1024

    func send(_ bytes: UnsafeRawBufferPointer) throws(TLSError) {
        counter?.wireBytes.add(Int64(bytes.count), ordering: .relaxed)
        guard let limiter else { return try connection.write(bytes) }
        var offset = 0
        while offset < bytes.count {
            let n = min(Self.slice, bytes.count - offset)
            limiter.acquire(n)
            try connection.write(UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)]))
            offset += n
        }
    }

    func send(_ bytes: [UInt8]) throws(TLSError) {
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
        defer { copy.deallocate() }
        copy.copyBytes(from: bytes)
        try send(UnsafeRawBufferPointer(copy))
    }
}
