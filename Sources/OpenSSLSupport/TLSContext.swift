import COpenSSL

/// An SSL_CTX set up from a ``TLSConfiguration``: own key and certificate, the peer's
/// certificate as the only trust anchor, mutual authentication, TLS 1.2 at least.
public final class TLSContext: @unchecked Sendable {
    let pointer: OpaquePointer
    public let configuration: TLSConfiguration
    /// The pinned peer certificate; compared again after every handshake.
    public let peerCertificate: X509Certificate
    /// Length-prefixed ALPN list the server's selection callback reads; lives as long as the context.
    private let alpnServerList: UnsafeMutablePointer<UInt8>?

    public init(_ configuration: TLSConfiguration) throws(TLSError) {
        self.configuration = configuration
        let method = configuration.role == .server ? TLS_server_method() : TLS_client_method()
        guard let context = SSL_CTX_new(method) else {
            throw TLSError(.configuration, "cannot create a TLS context: \(OpenSSLError.drain("SSL_CTX_new"))")
        }
        pointer = context
        var alpnStorage: UnsafeMutablePointer<UInt8>?
        do throws(TLSError) {
            peerCertificate = try Self.loadPeer(configuration.peerCertificatePath)
            try Self.configure(context, configuration, peer: peerCertificate)
            let wire = Self.alpnWireFormat(configuration.applicationProtocols)
            if !wire.isEmpty {
                if configuration.role == .client {
                    guard SSL_CTX_set_alpn_protos(context, wire, UInt32(wire.count)) == 0 else {
                        throw TLSError(.configuration, "cannot set ALPN protocols \(configuration.applicationProtocols)")
                    }
                } else {
                    let storage = UnsafeMutablePointer<UInt8>.allocate(capacity: wire.count + 2)
                    storage[0] = UInt8(wire.count >> 8)
                    storage[1] = UInt8(wire.count & 0xff)
                    for (i, byte) in wire.enumerated() { storage[i + 2] = byte }
                    alpnStorage = storage
                    gnt_SSL_CTX_enable_alpn_server(context, storage)
                }
            }
        } catch {
            SSL_CTX_free(context)
            alpnStorage?.deallocate()
            throw error
        }
        alpnServerList = alpnStorage
    }

    deinit {
        SSL_CTX_free(pointer)
        alpnServerList?.deallocate()
    }

    private static func loadPeer(_ path: String) throws(TLSError) -> X509Certificate {
        guard let file = fopen(path, "r") else {
            throw TLSError(.configuration, "cannot open peer certificate (CA) file \(path)")
        }
        defer { fclose(file) }
        guard let cert = PEM_read_X509(file, nil, nil, nil) else {
            throw TLSError(.configuration, "peer certificate (CA) file \(path) holds no PEM certificate: \(OpenSSLError.drain("reading"))")
        }
        return X509Certificate(owning: cert)
    }

    private static func configure(_ context: OpaquePointer, _ configuration: TLSConfiguration, peer: X509Certificate) throws(TLSError) {
        guard gnt_SSL_CTX_set_min_proto_version(context, TLS1_2_VERSION) == 1 else {
            throw TLSError(.configuration, "cannot require TLS 1.2: \(OpenSSLError.drain("SSL_CTX_set_min_proto_version"))")
        }
        _ = gnt_SSL_CTX_set_options_no_renegotiation(context)
        // Read whatever the socket holds, up to TLSConnection.readBuffer bytes, in one system
        // call, instead of two reads (header, body) per 16 KiB record.
        _ = gnt_SSL_CTX_set_read_ahead(context, 1)
        SSL_CTX_set_default_read_buffer_len(context, TLSConnection.readBuffer)
        guard SSL_CTX_set_cipher_list(context, configuration.cipherList) == 1 else {
            throw TLSError(.configuration, "invalid cipher list '\(configuration.cipherList)': \(OpenSSLError.drain("SSL_CTX_set_cipher_list"))")
        }
        guard SSL_CTX_set_ciphersuites(context, TLSConfiguration.tls13Suites) == 1 else {
            throw TLSError(.configuration, "cannot set TLS 1.3 suites: \(OpenSSLError.drain("SSL_CTX_set_ciphersuites"))")
        }
        guard SSL_CTX_use_certificate_chain_file(context, configuration.certificatePath) == 1 else {
            throw TLSError(.configuration, "cannot load certificate file \(configuration.certificatePath): \(OpenSSLError.drain("loading"))")
        }
        guard SSL_CTX_use_PrivateKey_file(context, configuration.keyPath, SSL_FILETYPE_PEM) == 1 else {
            throw TLSError(.configuration, "cannot load key file \(configuration.keyPath): \(OpenSSLError.drain("loading"))")
        }
        guard SSL_CTX_check_private_key(context) == 1 else {
            throw TLSError(.configuration, "key \(configuration.keyPath) does not match certificate \(configuration.certificatePath)")
        }
        // A store holding only the peer's certificate: no system CAs, no chains.
        guard let store = X509_STORE_new() else { throw TLSError(.configuration, "cannot allocate a certificate store") }
        guard X509_STORE_add_cert(store, peer.pointer) == 1 else {
            X509_STORE_free(store)
            throw TLSError(.configuration, "cannot pin the peer certificate: \(OpenSSLError.drain("X509_STORE_add_cert"))")
        }
        SSL_CTX_set_cert_store(context, store)
        SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, nil)
    }

    private static func alpnWireFormat(_ protocols: [String]) -> [UInt8] {
        var wire: [UInt8] = []
        for name in protocols where !name.isEmpty && name.utf8.count < 256 {
            wire.append(UInt8(name.utf8.count))
            wire.append(contentsOf: name.utf8)
        }
        return wire
    }
}
