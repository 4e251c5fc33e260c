import COpenSSL

/// A read/write memory BIO: the bridge between Swift strings and OpenSSL's PEM functions.
final class MemoryBIO {
    let pointer: OpaquePointer

    init() throws {
        guard let bio = BIO_new(BIO_s_mem()) else { throw OpenSSLError.drain("allocating a memory BIO") }
        pointer = bio
    }

    convenience init(bytes: [UInt8]) throws {
        try self.init()
        let written = bytes.withUnsafeBytes { BIO_write(pointer, $0.baseAddress, Int32($0.count)) }
        guard written == Int32(bytes.count) || bytes.isEmpty else {
            throw OpenSSLError.drain("filling a memory BIO")
        }
    }

    deinit { BIO_free(pointer) }

    /// Everything written into the BIO so far.
    var bytes: [UInt8] {
        var data: UnsafeMutablePointer<CChar>?
        let length = gnt_BIO_get_mem_data(pointer, &data)
        guard let data, length > 0 else { return [] }
        return data.withMemoryRebound(to: UInt8.self, capacity: length) {
            Array(UnsafeBufferPointer(start: $0, count: length))
        }
    }

    var string: String { String(decoding: bytes, as: UTF8.self) }
}
