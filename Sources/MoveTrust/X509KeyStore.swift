import Foundation
import OpenSSLSupport

/// Per-move keys on one cluster: `DIR/<key name>/key` and `DIR/<key name>/cert`, each mode
/// 0400, as Ganeti keeps them under `/var/run/ganeti/crypto`. Private keys never leave it;
/// only the signed certificate and the signed key name are handed out.
public struct X509KeyStore: Sendable {
    /// `_MAX_SSL_CERT_VALIDITY`: Ganeti caps per-move certificates at 7 days.
    public static let maxValidity: Int64 = 7 * 24 * 60 * 60
    /// `RIE_CERT_VALIDITY`.
    public static let defaultValidity: Int64 = 24 * 60 * 60
    /// Ganeti 3.0.2 senders check this name in the peer certificate.
    public static let compatibilityDNSName = "ganeti.example.com"

    public let directory: String

    public init(directory: String) { self.directory = directory }

    /// A key made by ``create(secret:validity:commonName:now:)``.
    public struct CreatedKey: Sendable {
        public let name: String
        public let keyPath: String
        public let certificatePath: String
        public let certificate: X509Certificate
        /// `[name, hmac, salt]`
        public let signedName: JSONValue
        /// The `X-Ganeti-Signature` text.
        public let signedCertificate: String
    }

    public func keyPath(_ name: String) -> String { directory + "/" + name + "/key" }
    public func certificatePath(_ name: String) -> String { directory + "/" + name + "/cert" }

    /// Makes a fresh RSA-2048 key and a self-signed SHA-256 certificate and stores both. The
    /// name and certificate are signed with separate salts (Ganeti reuses one; docs/protocol.md §9.12).
    public func create(secret: ClusterDomainSecret, validity: Int64 = defaultValidity,
                       commonName: String = HostIdentity.fqdn(), now: Int64 = UnixTime.now(),
                       notBeforeOffset: Int64 = 0) throws(TrustError) -> CreatedKey {
        guard validity > 0 else { throw TrustError(.keyStore, "certificate validity must be positive, got \(validity) s") }
        guard validity <= Self.maxValidity else {
            throw TrustError(.keyStore, "certificate validity \(validity) s exceeds the maximum of \(Self.maxValidity) s (7 days)")
        }
        let key: PrivateKey
        let certificate: X509Certificate
        let keyPEM: String
        let certificatePEM: String
        do {
            key = try PrivateKey.generateRSA(bits: 2048)
            certificate = try X509Certificate.selfSigned(
                key: key, commonName: commonName, subjectAltDNSNames: [Self.compatibilityDNSName],
                serial: now, notBefore: now + notBeforeOffset, notAfter: now + validity)
            keyPEM = try key.pemEncoded()
            certificatePEM = try certificate.canonicalPEM()
        } catch {
            throw TrustError(.keyStore, "cannot make a key and certificate: \(error)")
        }
        let name = try makeKeyDirectory(now: now)
        do {
            try SecureFile.write(contents: Array(keyPEM.utf8), to: keyPath(name), mode: 0o400, replace: false)
            try SecureFile.write(contents: Array(certificatePEM.utf8), to: certificatePath(name), mode: 0o400, replace: false)
        } catch {
            try? remove(name: name)
            throw TrustError(.keyStore, "cannot write key \(name) in \(directory): \(error)")
        }
        return CreatedKey(name: name, keyPath: keyPath(name), certificatePath: certificatePath(name),
                          certificate: certificate, signedName: X509KeyName.sign(name, secret: secret),
                          signedCertificate: try SignedCertificate.sign(certificate, secret: secret))
    }

    private func makeKeyDirectory(now: Int64) throws(TrustError) -> String {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o700])
        } catch {
            throw TrustError(.keyStore, "cannot create key store \(directory): \(error.localizedDescription)")
        }
        for _ in 0..<10 {
            let name = X509KeyName.generate(now: now)
            if mkdir(directory + "/" + name, 0o700) == 0 { return name }
            if errno != EEXIST {
                throw TrustError(.keyStore, "cannot create \(directory)/\(name): \(String(cString: strerror(errno)))")
            }
        }
        throw TrustError(.keyStore, "cannot find a free key name in \(directory)")
    }

    /// Deletes a key and its certificate (`RemoveX509Certificate`). Removing a key that is
    /// already gone is not an error: cleanup must be safe to repeat after a crash.
    public func remove(name: String) throws(TrustError) {
        guard X509KeyName.isSafe(name) else { throw TrustError(.keyStore, "'\(name)' is not a valid key name") }
        let folder = directory + "/" + name
        guard FileManager.default.fileExists(atPath: folder) else { return }
        for path in [keyPath(name), certificatePath(name)] where unlink(path) != 0 && errno != ENOENT {
            throw TrustError(.keyStore, "cannot remove \(path): \(String(cString: strerror(errno)))")
        }
        guard rmdir(folder) == 0 || errno == ENOENT else {
            throw TrustError(.keyStore, "cannot remove \(folder): \(String(cString: strerror(errno)))")
        }
    }

    /// Whether a key of that name is present.
    public func contains(name: String) -> Bool {
        X509KeyName.isSafe(name) && FileManager.default.fileExists(atPath: keyPath(name))
    }

    /// The names of all keys in the store.
    public func names() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasPrefix("x509-") && X509KeyName.isSafe($0) }.sorted()
    }

    /// Loads a stored certificate.
    public func certificate(name: String) throws(TrustError) -> X509Certificate {
        guard contains(name: name) else { throw TrustError(.keyStore, "no key named '\(name)' in \(directory)") }
        do {
            return try X509Certificate(pem: String(contentsOfFile: certificatePath(name), encoding: .utf8))
        } catch {
            throw TrustError(.keyStore, "cannot read certificate of key \(name): \(error)")
        }
    }
}
