import COpenSSL

/// Random bytes from OpenSSL's CSPRNG.
public enum SecureRandom {
    public static func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        let ok = out.withUnsafeMutableBytes { RAND_bytes($0.baseAddress?.assumingMemoryBound(to: UInt8.self), Int32(count)) }
        // RAND_bytes fails only when the system has no entropy source at all; continuing would
        // produce predictable secrets, so this is a fatal configuration error.
        precondition(ok == 1, "OpenSSL RAND_bytes failed: \(OpenSSLError.drainQueue())")
        return out
    }

    /// `count` random bytes as lowercase hex: Python's `os.urandom(count).hex()`.
    public static func hex(byteCount count: Int) -> String { Hex.encode(bytes(count)) }
}

/// Lowercase hexadecimal encoding.
public enum Hex {
    private static let digits = Array("0123456789abcdef".utf8)

    public static func encode<Bytes: Sequence>(_ bytes: Bytes) -> String where Bytes.Element == UInt8 {
        var out = [UInt8]()
        out.reserveCapacity(bytes.underestimatedCount * 2)
        for byte in bytes {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
