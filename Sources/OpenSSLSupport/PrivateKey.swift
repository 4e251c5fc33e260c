import COpenSSL

/// An OpenSSL private key (EVP_PKEY). Immutable once made, so it may be shared across threads.
public final class PrivateKey: @unchecked Sendable {
    let pointer: OpaquePointer

    init(owning pointer: OpaquePointer) { self.pointer = pointer }
    deinit { EVP_PKEY_free(pointer) }

    /// A fresh RSA key. `EVP_RSA_gen` is variadic and cannot be called from Swift, hence the
    /// explicit keygen context.
    public static func generateRSA(bits: Int32 = 2048) throws -> PrivateKey {
        guard let context = EVP_PKEY_CTX_new_from_name(nil, "RSA", nil) else {
            throw OpenSSLError.drain("creating an RSA key context")
        }
        defer { EVP_PKEY_CTX_free(context) }
        guard EVP_PKEY_keygen_init(context) == 1,
              EVP_PKEY_CTX_set_rsa_keygen_bits(context, bits) == 1 else {
            throw OpenSSLError.drain("preparing RSA key generation")
        }
        var key: OpaquePointer?
        guard EVP_PKEY_generate(context, &key) == 1, let key else {
            throw OpenSSLError.drain("generating an RSA-\(bits) key")
        }
        return PrivateKey(owning: key)
    }

    public convenience init(pem: String) throws {
        let bio = try MemoryBIO(bytes: Array(pem.utf8))
        guard let key = PEM_read_bio_PrivateKey(bio.pointer, nil, nil, nil) else {
            throw OpenSSLError.drain("reading a PEM private key")
        }
        self.init(owning: key)
    }

    /// PKCS#8 PEM, unencrypted (the file is protected by its mode, as in Ganeti).
    public func pemEncoded() throws -> String {
        let bio = try MemoryBIO()
        guard PEM_write_bio_PrivateKey(bio.pointer, pointer, nil, nil, 0, nil, nil) == 1 else {
            throw OpenSSLError.drain("writing a PEM private key")
        }
        return bio.string
    }

    public var bits: Int32 { EVP_PKEY_get_bits(pointer) }
}
