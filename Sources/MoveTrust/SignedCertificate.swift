import OpenSSLSupport

/// Ganeti's signed certificate text (docs/protocol.md §2.2):
///
///     X-Ganeti-Signature: <salt>/<hmac-sha1 hex>\n
///     \n
///     <canonical PEM>
///
/// The HMAC covers `salt ‖ canonical PEM`, where the canonical PEM is OpenSSL's re-encoding of
/// the DER. The header is not covered; the salt is bound only through the MAC.
public enum SignedCertificate {
    public static let headerName = "X-Ganeti-Signature"

    /// Signs `certificate` with the cluster domain secret.
    public static func sign(_ certificate: X509Certificate, secret: ClusterDomainSecret,
                            salt: String = Salt.generate()) throws(TrustError) -> String {
        guard Salt.isValidCertificateSalt(salt) else {
            throw TrustError(.signature, "invalid salt '\(salt)': a certificate salt must match [a-zA-Z0-9]+")
        }
        let pem: String
        do { pem = try certificate.canonicalPEM() } catch {
            throw TrustError(.certificate, "cannot encode certificate: \(error)")
        }
        return "\(headerName): \(salt)/\(GanetiHMAC.sha1(key: secret, text: pem, salt: salt))\n\n\(pem)"
    }

    /// Parses the signature header: the first line before any `---` line that matches
    /// `^X-Ganeti-Signature:\s*([a-zA-Z0-9]+)/([a-zA-Z0-9]+)$`, case-insensitively, after
    /// stripping white space. Other lines are ignored, as in `LoadSignedX509Certificate`.
    public static func parseHeader(_ text: String) -> (salt: String, digest: String)? {
        let prefix = Array(headerName.lowercased().utf8) + [UInt8(ascii: ":")]
        for rawLine in TextLines.split(text) {
            if rawLine.hasPrefix("---") { break }
            let line = Array(TextLines.strip(rawLine).utf8)
            guard line.count > prefix.count,
                  zip(line, prefix).allSatisfy({ ($0 | ($0 >= 0x41 && $0 <= 0x5a ? 0x20 : 0)) == $1 }) else { continue }
            var rest = line[prefix.count...]
            while let first = rest.first, [0x20, 0x09, 0x0a, 0x0b, 0x0c, 0x0d].contains(first) { rest = rest.dropFirst() }
            let parts = rest.split(separator: UInt8(ascii: "/"), omittingEmptySubsequences: false)
            guard parts.count == 2,
                  !parts[0].isEmpty, parts[0].allSatisfy(Salt.isAlphanumeric),
                  !parts[1].isEmpty, parts[1].allSatisfy(Salt.isAlphanumeric) else { continue }
            return (String(decoding: parts[0], as: UTF8.self), String(decoding: parts[1], as: UTF8.self))
        }
        return nil
    }

    /// Loads a signed certificate and checks its signature, but not its validity period (see
    /// ``CertificateValidity``). Errors use Ganeti's wording.
    public static func load(_ text: String, secret: ClusterDomainSecret) throws(TrustError) -> (certificate: X509Certificate, salt: String) {
        guard let header = parseHeader(text) else {
            throw TrustError(.signature, "X509 certificate signature is missing")
        }
        let certificate: X509Certificate
        let pem: String
        do {
            certificate = try X509Certificate(pem: text)
            pem = try certificate.canonicalPEM()
        } catch {
            throw TrustError(.certificate, "X509 certificate cannot be parsed: \(error)")
        }
        guard GanetiHMAC.verifySHA1(key: secret, text: pem, digest: header.digest, salt: header.salt) else {
            throw TrustError(.signature, "X509 certificate signature is invalid")
        }
        return (certificate, header.salt)
    }

    /// Loads, checks the signature, then checks the validity period against `now`: what a
    /// destination does with `source_x509_ca` and a source with `destination_x509_ca`.
    public static func verify(_ text: String, secret: ClusterDomainSecret,
                              now: Int64 = UnixTime.now()) throws(TrustError) -> (certificate: X509Certificate, salt: String) {
        let loaded = try load(text, secret: secret)
        try CertificateValidity.check(loaded.certificate, now: now)
        return loaded
    }
}

/// Ganeti's `VerifyX509Certificate(cert, None, None)` as its callers apply it: an expired
/// certificate is refused, and so is one valid only from more than `maxClockSkew` in the future.
public enum CertificateValidity {
    /// `NODE_MAX_CLOCK_SKEW`.
    public static let maxClockSkew: Int64 = 150

    public static func check(_ certificate: X509Certificate, now: Int64) throws(TrustError) {
        let notBefore = certificate.notBefore
        let notAfter = certificate.notAfter
        if notAfter < now {
            throw TrustError(.certificate, "Certificate is expired (valid until \(UnixTime.iso8601(notAfter)), now \(UnixTime.iso8601(now)))")
        }
        if notBefore > now + maxClockSkew {
            throw TrustError(.certificate, "Certificate not yet valid (valid from \(UnixTime.iso8601(notBefore)), now \(UnixTime.iso8601(now)); allowed clock skew \(maxClockSkew) s)")
        }
    }
}
