/// The export handshake (docs/protocol.md §3): `[0, HMAC-SHA1("0:Hi, I'm Ganeti"), salt]`. It proves only
/// that the source holds the cluster domain secret and speaks protocol version 0.
public enum ExportHandshake {
    public static let version = 0
    public static let greeting = "Hi, I'm Ganeti"

    static func message(version: String) -> String { "\(version):\(greeting)" }

    public static func make(secret: ClusterDomainSecret, salt: String = Salt.generate()) -> JSONValue {
        .array([.int(version), .string(GanetiHMAC.sha1(key: secret, text: message(version: String(version)), salt: salt)), .string(salt)])
    }

    /// `CheckRemoteExportHandshake`: the MAC is checked over the version as received (Python
    /// `%s`), then the version must be the integer 0.
    public static func check(_ value: JSONValue, secret: ClusterDomainSecret) throws(TrustError) {
        guard let items = value.arrayValue, items.count == 3 else {
            throw TrustError(.handshake, "Invalid data: the handshake must be [version, hmac, salt], got \(value.serialized)")
        }
        guard let digest = items[1].stringValue else {
            throw TrustError(.handshake, "Invalid data: the handshake HMAC must be a string, got \(items[1].typeName)")
        }
        let salt: String?
        switch items[2] {
        case .string(let s): salt = s
        case let other where !other.isTruthy: salt = nil
        default: throw TrustError(.handshake, "Invalid data: the handshake salt must be a string, got \(items[2].typeName)")
        }
        guard GanetiHMAC.verifySHA1(key: secret, text: message(version: PythonFormat.percentS(items[0])), digest: digest, salt: salt) else {
            throw TrustError(.handshake, "Hash didn't match, clusters don't share the same domain secret")
        }
        guard items[0].integerValue == Int64(version), case .number = items[0] else {
            throw TrustError(.handshake, "Clusters don't have the same remote import/export protocol (local=\(version), remote=\(PythonFormat.percentS(items[0])))")
        }
    }
}
