import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// An X.509 certificate. Immutable once made, so it may be shared across threads.
public final class X509Certificate: @unchecked Sendable {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { X509_free(pointer) }

    /// Parses the first PEM certificate in `pem`. Text before the BEGIN line is skipped, as
    /// OpenSSL (and so Ganeti) does, which lets a signature header precede the certificate.
    public convenience init(pem: String) throws {
        let bio = try MemoryBIO(bytes: Array(pem.utf8))
        guard let cert = PEM_read_bio_X509(bio.pointer, nil, nil, nil) else {
            let reasons = OpenSSLError.drainQueue()
            throw OpenSSLError(operation: "not a PEM certificate", reasons: reasons)
        }
        self.init(owning: cert)
    }

    /// Builds a self-signed certificate for `key`. `version3` adds the subjectAltName entries
    /// (Ganeti's own certificates are v1 without extensions; Ganeti 3.0.2 senders look for the
    /// SAN `ganeti.example.com`).
    public static func selfSigned(key: PrivateKey, commonName: String, subjectAltDNSNames: [String],
                                  serial: Int64, notBefore: Int64, notAfter: Int64) throws -> X509Certificate {
        guard let cert = X509_new() else { throw OpenSSLError.drain("allocating a certificate") }
        let certificate = X509Certificate(owning: cert)
        let version: Int = subjectAltDNSNames.isEmpty ? 0 : 2
        guard X509_set_version(cert, version) == 1,
              ASN1_INTEGER_set_int64(X509_get_serialNumber(cert), serial) == 1,
              ASN1_TIME_set(X509_getm_notBefore(cert), time_t(notBefore)) != nil,
              ASN1_TIME_set(X509_getm_notAfter(cert), time_t(notAfter)) != nil,
              X509_set_pubkey(cert, key.pointer) == 1 else {
            throw OpenSSLError.drain("filling in a certificate")
        }
        guard let name = X509_get_subject_name(cert),
              X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, commonName, -1, -1, 0) == 1,
              X509_set_issuer_name(cert, name) == 1 else {
            throw OpenSSLError.drain("setting the certificate name CN=\(commonName)")
        }
        if !subjectAltDNSNames.isEmpty {
            var context = X509V3_CTX()
            X509V3_set_ctx(&context, cert, cert, nil, nil, 0)
            let value = subjectAltDNSNames.map { "DNS:\($0)" }.joined(separator: ",")
            guard let ext = X509V3_EXT_nconf_nid(nil, &context, NID_subject_alt_name, value) else {
                throw OpenSSLError.drain("building subjectAltName \(value)")
            }
            defer { X509_EXTENSION_free(ext) }
            guard X509_add_ext(cert, ext, -1) == 1 else { throw OpenSSLError.drain("adding subjectAltName") }
        }
        guard X509_sign(cert, key.pointer, EVP_sha256()) > 0 else {
            throw OpenSSLError.drain("signing the certificate")
        }
        return certificate
    }

    /// OpenSSL's PEM encoding of the DER: BEGIN line, base64 in 64 columns, END line, newline.
    /// Ganeti signs exactly these bytes.
    public func canonicalPEM() throws -> String {
        let bio = try MemoryBIO()
        guard PEM_write_bio_X509(bio.pointer, pointer) == 1 else {
            throw OpenSSLError.drain("encoding a certificate as PEM")
        }
        return bio.string
    }

    public var derEncoded: [UInt8] {
        var out: UnsafeMutablePointer<UInt8>?
        let length = i2d_X509(pointer, &out)
        guard length > 0, let out else { return [] }
        defer { CRYPTO_free(out, #fileID, #line) }
        return Array(UnsafeBufferPointer(start: out, count: Int(length)))
    }

    /// Seconds since the epoch.
    public var notBefore: Int64 { Self.unixTime(X509_get0_notBefore(pointer)) }
    public var notAfter: Int64 { Self.unixTime(X509_get0_notAfter(pointer)) }

    /// The subject in RFC 2253 form, e.g. `CN=node1.example.com`.
    public var subject: String {
        guard let bio = try? MemoryBIO(), let name = X509_get_subject_name(pointer) else { return "" }
        X509_NAME_print_ex(bio.pointer, name, 0, gnt_XN_FLAG_RFC2253())
        return bio.string
    }

    public var commonName: String? {
        guard let name = X509_get_subject_name(pointer) else { return nil }
        var buffer = [CChar](repeating: 0, count: 256)
        let length = X509_NAME_get_text_by_NID(name, NID_commonName, &buffer, Int32(buffer.count))
        guard length >= 0 else { return nil }
        return String(decoding: buffer.prefix(Int(length)).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Lowercase hex SHA-256 of the DER encoding.
    public var sha256Fingerprint: String { Hex.encode(MessageAuthentication.digest(.sha256, derEncoded)) }

    /// True when both are the same certificate (same DER).
    public func isSame(as other: X509Certificate) -> Bool { X509_cmp(pointer, other.pointer) == 0 }

    public var publicKeyBits: Int32 { X509_get0_pubkey(pointer).map { EVP_PKEY_get_bits($0) } ?? 0 }

    private static func unixTime(_ time: UnsafePointer<ASN1_TIME>?) -> Int64 {
        guard let time else { return 0 }
        var parts = tm()
        guard ASN1_TIME_to_tm(time, &parts) == 1 else { return 0 }
        return Int64(timegm(&parts))
    }
}
