/// An instance spec signed by the source cluster. Ganeti has nothing like it: there a third
/// party may change any field of the spec it relays. Here the destination builds the instance
/// from exactly what the source cluster described, for exactly this move.
///
/// Wire form (an extension, used only when both clusters advertise `gnt-move-signed-spec`):
///
///     {"version": 2, "source_cluster": C, "destination_cluster": D, "x509_key_name": K,
///      "source_cert_sha256": F, "expires": T, "spec": {...}, "salt": S,
///      "hmac": HMAC-SHA256(secret, S ‖ canonical(every field but salt and hmac))}
///
/// The MAC binds the spec to the source cluster, to the one destination cluster the move goes
/// to, to the move's source key (its name, and the fingerprint of its certificate, which the
/// destination compares with the `source_x509_ca` it receives beside the spec) and to an expiry,
/// so a spec cannot be replayed into another move or another cluster. Operator overrides (a new
/// name, NIC links, memory) travel beside the signed spec as declared overrides, never inside it.
public enum SignedInstanceSpec {
    public static let version = 2
    public static let feature = "gnt-move-signed-spec"

    /// What a signed spec is bound to.
    public struct Binding: Sendable, Equatable {
        public var sourceCluster: String
        public var destinationCluster: String
        public var keyName: String
        /// SHA-256 of the source certificate's DER encoding, lowercase hex.
        public var certificateSHA256: String
        /// Unix time after which the spec is refused.
        public var expires: Int64

        public init(sourceCluster: String, destinationCluster: String, keyName: String, certificateSHA256: String, expires: Int64) {
            (self.sourceCluster, self.destinationCluster, self.keyName) = (sourceCluster, destinationCluster, keyName)
            (self.certificateSHA256, self.expires) = (certificateSHA256, expires)
        }
    }

    static func signedPart(_ spec: JSONValue, _ binding: Binding) -> JSONValue {
        .object(["version": .int(version), "source_cluster": .string(binding.sourceCluster),
                 "destination_cluster": .string(binding.destinationCluster), "x509_key_name": .string(binding.keyName),
                 "source_cert_sha256": .string(binding.certificateSHA256), "expires": .int64(binding.expires), "spec": spec])
    }

    public static func sign(_ spec: InstanceSpec, binding: Binding, secret: ClusterDomainSecret, salt: String = Salt.generate()) -> JSONValue {
        let body = signedPart(spec.json, binding)
        let mac = GanetiHMAC.sha256(key: secret, text: body.serialized, salt: salt)
        guard case .object(var fields) = body else { return body }
        fields["salt"] = .string(salt)
        fields["hmac"] = .string(mac)
        return .object(fields)
    }

    /// The verified content of a signed spec.
    public struct Verified: Sendable, Equatable {
        public let spec: InstanceSpec
        public let binding: Binding
        public let salt: String
    }

    /// What the verifier expects the spec to be bound to; nil skips that check.
    public struct Expectation: Sendable {
        public var sourceCluster: String?
        public var destinationCluster: String?
        public var keyName: String?
        public var certificateSHA256: String?
        public var now: Int64

        public init(sourceCluster: String? = nil, destinationCluster: String? = nil, keyName: String? = nil,
                    certificateSHA256: String? = nil, now: Int64 = UnixTime.now()) {
            (self.sourceCluster, self.destinationCluster, self.keyName) = (sourceCluster, destinationCluster, keyName)
            (self.certificateSHA256, self.now) = (certificateSHA256, now)
        }
    }

    /// Verifies the MAC, then every binding the caller expects, then the expiry.
    public static func verify(_ value: JSONValue, secret: ClusterDomainSecret, expecting expected: Expectation = Expectation()) throws(TrustError) -> Verified {
        guard let fields = value.objectValue else { throw TrustError(.spec, "signed instance spec must be a JSON object") }
        guard fields["version"]?.integerValue == Int64(version) else {
            throw TrustError(.spec, "signed instance spec has version \(fields["version"].map(PythonFormat.percentS) ?? "none"); expected \(version)")
        }
        func field(_ key: String) throws(TrustError) -> String {
            guard let text = fields[key]?.stringValue, !text.isEmpty else {
                throw TrustError(.spec, "signed instance spec field '\(key)' is missing or not a string")
            }
            return text
        }
        let binding = Binding(sourceCluster: try field("source_cluster"), destinationCluster: try field("destination_cluster"),
                              keyName: try field("x509_key_name"), certificateSHA256: try field("source_cert_sha256"), expires: 0)
        guard let expires = fields["expires"]?.integerValue else { throw TrustError(.spec, "signed instance spec field 'expires' is missing or not an integer") }
        let salt = try field("salt"), mac = try field("hmac")
        guard let spec = fields["spec"] else { throw TrustError(.spec, "signed instance spec field 'spec' is missing") }
        var bound = binding
        bound.expires = expires
        guard GanetiHMAC.verifySHA256(key: secret, text: signedPart(spec, bound).serialized, digest: mac, salt: salt) else {
            throw TrustError(.spec, "instance spec signature is invalid: the spec was altered after the source signed it, or signed with another secret")
        }
        if let cluster = expected.sourceCluster, cluster != bound.sourceCluster {
            throw TrustError(.spec, "instance spec was signed for source cluster '\(bound.sourceCluster)', not '\(cluster)'")
        }
        if let cluster = expected.destinationCluster, cluster != bound.destinationCluster {
            throw TrustError(.spec, "instance spec is bound to destination cluster '\(bound.destinationCluster)', not to this cluster '\(cluster)'")
        }
        if let keyName = expected.keyName, keyName != bound.keyName {
            throw TrustError(.spec, "instance spec is bound to key '\(bound.keyName)', not to this move's key '\(keyName)'")
        }
        if let fingerprint = expected.certificateSHA256, fingerprint.lowercased() != bound.certificateSHA256.lowercased() {
            throw TrustError(.spec, "instance spec is bound to another source certificate (sha256 \(bound.certificateSHA256.prefix(16))…) than the source_x509_ca of this request (\(fingerprint.prefix(16))…)")
        }
        guard expected.now <= expires else {
            throw TrustError(.spec, "instance spec expired at \(UnixTime.iso8601(expires)) (now \(UnixTime.iso8601(expected.now)))")
        }
        return Verified(spec: try InstanceSpec(json: spec), binding: bound, salt: salt)
    }
}
