/// An instance spec signed by the source cluster. Ganeti has nothing like it: there a third
/// party may change any field of the spec it relays. Here the destination refuses a spec that
/// is not exactly what the source cluster described, for exactly this move.
///
/// Wire form (an extension, used only when both clusters advertise `gnt-move-signed-spec`):
///
///     {"version": 1, "source_cluster": C, "x509_key_name": K, "spec": {...},
///      "salt": S, "hmac": HMAC-SHA256(secret, S ‖ canonical({"source_cluster", "spec",
///      "version", "x509_key_name"}))}
///
/// The MAC binds the spec to the source cluster's name and to the move's source key name, so a
/// spec cannot be replayed into another move. Operator overrides (a new name, nodes, NIC
/// changes) travel beside the signed spec, never inside it.
public enum SignedInstanceSpec {
    public static let version = 1
    public static let feature = "gnt-move-signed-spec"

    static func signedPart(_ spec: JSONValue, cluster: String, keyName: String) -> JSONValue {
        .object(["version": .int(version), "source_cluster": .string(cluster), "x509_key_name": .string(keyName), "spec": spec])
    }

    public static func sign(_ spec: InstanceSpec, cluster: String, keyName: String,
                            secret: ClusterDomainSecret, salt: String = Salt.generate()) -> JSONValue {
        let body = signedPart(spec.json, cluster: cluster, keyName: keyName)
        let mac = GanetiHMAC.sha256(key: secret, text: body.serialized, salt: salt)
        guard case .object(var fields) = body else { return body }
        fields["salt"] = .string(salt)
        fields["hmac"] = .string(mac)
        return .object(fields)
    }

    /// The verified content of a signed spec.
    public struct Verified: Sendable, Equatable {
        public let spec: InstanceSpec
        public let sourceCluster: String
        public let keyName: String
        public let salt: String
    }

    /// Verifies the MAC, then the binding to `expectedCluster` and `expectedKeyName` where given.
    public static func verify(_ value: JSONValue, secret: ClusterDomainSecret,
                              expectedCluster: String? = nil, expectedKeyName: String? = nil) throws(TrustError) -> Verified {
        guard let fields = value.objectValue else { throw TrustError(.spec, "signed instance spec must be a JSON object") }
        guard fields["version"]?.integerValue == Int64(version) else {
            throw TrustError(.spec, "signed instance spec has version \(fields["version"].map(PythonFormat.percentS) ?? "none"); expected \(version)")
        }
        guard let cluster = fields["source_cluster"]?.stringValue, let keyName = fields["x509_key_name"]?.stringValue,
              let salt = fields["salt"]?.stringValue, let mac = fields["hmac"]?.stringValue, let spec = fields["spec"] else {
            throw TrustError(.spec, "signed instance spec must carry source_cluster, x509_key_name, spec, salt and hmac")
        }
        let body = signedPart(spec, cluster: cluster, keyName: keyName)
        guard GanetiHMAC.verifySHA256(key: secret, text: body.serialized, digest: mac, salt: salt) else {
            throw TrustError(.spec, "instance spec signature is invalid: the spec was altered after the source signed it, or signed with another secret")
        }
        if let expectedCluster, expectedCluster != cluster {
            throw TrustError(.spec, "instance spec was signed for source cluster '\(cluster)', not '\(expectedCluster)'")
        }
        if let expectedKeyName, expectedKeyName != keyName {
            throw TrustError(.spec, "instance spec is bound to key '\(keyName)', not to this move's key '\(expectedKeyName)'")
        }
        return Verified(spec: try InstanceSpec(json: spec), sourceCluster: cluster, keyName: keyName, salt: salt)
    }
}
