import OpenSSLSupport

/// The name of a per-move key on the cluster that made it, and its signed form
/// `[name, HMAC-SHA1(name), salt]` that the third party relays back at export time (docs/protocol.md §3).
public enum X509KeyName {
    /// `x509-<TimestampForFilename()>-<8 random characters>`, as Ganeti's `mkdtemp` makes it.
    public static func generate(now: Int64 = UnixTime.now()) -> String {
        let alphabet = Array("abcdefghijklmnopqrstuvwxyz0123456789")
        let suffix = SecureRandom.bytes(8).map { alphabet[Int($0) % alphabet.count] }
        return "x509-\(UnixTime.forFilename(now))-\(String(suffix))"
    }

    /// A key name names a directory under the key store, so it must be one safe path component.
    public static func isSafe(_ name: String) -> Bool {
        !name.isEmpty && name != "." && name != ".." && name.utf8.count <= 200 &&
            name.utf8.allSatisfy { Salt.isAlphanumeric($0) || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") }
    }

    public static func sign(_ name: String, secret: ClusterDomainSecret, salt: String = Salt.generate()) -> JSONValue {
        .array([.string(name), .string(GanetiHMAC.sha1(key: secret, text: name, salt: salt)), .string(salt)])
    }

    /// Verifies a relayed `[name, hmac, salt]` and returns the name.
    public static func check(_ value: JSONValue, secret: ClusterDomainSecret) throws(TrustError) -> String {
        guard let items = value.arrayValue, items.count == 3,
              let name = items[0].stringValue, let digest = items[1].stringValue, let salt = items[2].stringValue else {
            throw TrustError(.keyName, "Invalid data: x509_key_name must be [name, hmac, salt] strings, got \(value.serialized)")
        }
        guard GanetiHMAC.verifySHA1(key: secret, text: name, digest: digest, salt: salt) else {
            throw TrustError(.keyName, "HMAC for X509 key name is wrong")
        }
        guard isSafe(name) else {
            throw TrustError(.keyName, "X509 key name '\(name)' is not a valid key name")
        }
        return name
    }
}
