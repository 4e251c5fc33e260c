import COpenSSL

/// The digest behind an HMAC or a hash.
public enum DigestAlgorithm: Sendable {
    case sha1
    case sha256
    /// Only for Ganeti's `{HA1}` RAPI passwords (RFC 2617), never for new formats.
    case md5

    var evp: OpaquePointer? {
        switch self {
        case .sha1: return EVP_sha1()
        case .sha256: return EVP_sha256()
        case .md5: return EVP_md5()
        }
    }
}

/// One-shot HMAC and digests, and a constant-time comparison.
public enum MessageAuthentication {
    public static func hmac(_ algorithm: DigestAlgorithm, key: [UInt8], message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let result = key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                HMAC(algorithm.evp, keyBytes.baseAddress, Int32(keyBytes.count),
                     messageBytes.baseAddress?.assumingMemoryBound(to: UInt8.self), messageBytes.count,
                     &out, &length)
            }
        }
        precondition(result != nil, "OpenSSL HMAC failed: \(OpenSSLError.drainQueue())")
        return Array(out.prefix(Int(length)))
    }

    public static func digest(_ algorithm: DigestAlgorithm, _ message: [UInt8]) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        let ok = message.withUnsafeBytes {
            EVP_Digest($0.baseAddress, $0.count, &out, &length, algorithm.evp, nil)
        }
        precondition(ok == 1, "OpenSSL EVP_Digest failed: \(OpenSSLError.drainQueue())")
        return Array(out.prefix(Int(length)))
    }

    /// Compares two byte strings in time that depends only on their lengths.
    public static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        if a.isEmpty { return true }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in CRYPTO_memcmp(pa.baseAddress, pb.baseAddress, pa.count) == 0 }
        }
    }
}
