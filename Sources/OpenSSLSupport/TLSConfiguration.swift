/// How one end of a block-stream connection authenticates.
///
/// Both ends present a certificate and trust exactly one: the peer's, which arrived signed with
/// the cluster domain secret (Ganeti's `--ca`). No system CA store is consulted and no host
/// name is checked; the pinned certificate is the whole of the trust.
public struct TLSConfiguration: Sendable {
    public enum Role: Sendable { case client, server }

    /// Ganeti's `OPENSSL_CIPHERS`, for TLS 1.2.
    public static let ganetiCipherList = "HIGH:-DES:-3DES:-EXPORT:-DH"
    /// TLS 1.3 suites, AES-128-GCM first: it is the fastest with AES-NI and the data is already
    /// protected by a per-move key.
    public static let tls13Suites = "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"

    public var role: Role
    public var keyPath: String
    public var certificatePath: String
    /// The peer's certificate: the only trust anchor.
    public var peerCertificatePath: String
    public var cipherList: String
    /// Application protocols, most preferred first. A client offers them; a server accepts the
    /// first it knows of those offered, and otherwise goes on without ALPN.
    public var applicationProtocols: [String]

    public init(role: Role, keyPath: String, certificatePath: String, peerCertificatePath: String,
                cipherList: String = TLSConfiguration.ganetiCipherList, applicationProtocols: [String] = []) {
        self.role = role
        self.keyPath = keyPath
        self.certificatePath = certificatePath
        self.peerCertificatePath = peerCertificatePath
        self.cipherList = cipherList
        self.applicationProtocols = applicationProtocols
    }
}
