import OpenSSLSupport

/// Ganeti's HMAC: `HMAC(key = cluster domain secret, message = salt ‖ text)`, as lowercase hex
/// (`utils.Sha1Hmac`). SHA-1 is Ganeti's; SHA-256 is for the formats that are gnt-move's alone.
public enum GanetiHMAC {
    public static func sha1(key: ClusterDomainSecret, text: String, salt: String? = nil) -> String {
        compute(.sha1, key: key.key, text: text, salt: salt)
    }

    public static func sha256(key: ClusterDomainSecret, text: String, salt: String? = nil) -> String {
        compute(.sha256, key: key.key, text: text, salt: salt)
    }

    public static func compute(_ algorithm: DigestAlgorithm, key: [UInt8], text: String, salt: String?) -> String {
        var message = Array((salt ?? "").utf8)
        message.append(contentsOf: text.utf8)
        return Hex.encode(MessageAuthentication.hmac(algorithm, key: key, message: message))
    }

    /// Checks `digest` case-insensitively, as Ganeti does, but in constant time.
    public static func verifySHA1(key: ClusterDomainSecret, text: String, digest: String, salt: String? = nil) -> Bool {
        verify(.sha1, key: key.key, text: text, digest: digest, salt: salt)
    }

    public static func verifySHA256(key: ClusterDomainSecret, text: String, digest: String, salt: String? = nil) -> Bool {
        verify(.sha256, key: key.key, text: text, digest: digest, salt: salt)
    }

    static func verify(_ algorithm: DigestAlgorithm, key: [UInt8], text: String, digest: String, salt: String?) -> Bool {
        let expected = Array(compute(algorithm, key: key, text: text, salt: salt).utf8)
        let given = digest.utf8.map { (0x41...0x5a).contains($0) ? $0 | 0x20 : $0 }
        return MessageAuthentication.constantTimeEqual(expected, given)
    }
}

/// Salts as Ganeti makes them: `utils.GenerateSecret(8)`, 16 lowercase hex characters.
public enum Salt {
    public static func generate() -> String { SecureRandom.hex(byteCount: 8) }

    /// The salt of a signed certificate header must match `^[a-zA-Z0-9]+$`.
    public static func isValidCertificateSalt(_ salt: some StringProtocol) -> Bool {
        !salt.isEmpty && salt.utf8.allSatisfy(isAlphanumeric)
    }

    static func isAlphanumeric(_ byte: UInt8) -> Bool {
        (0x30...0x39).contains(byte) || (0x41...0x5a).contains(byte) || (0x61...0x7a).contains(byte)
    }
}
