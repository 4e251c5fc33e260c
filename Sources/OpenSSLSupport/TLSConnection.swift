import COpenSSL
#if canImport(Glibc)
import Glibc
#endif

/// One TLS connection over a connected blocking socket.
///
/// Records are written through a buffer and reach the socket when a ``write(_:)`` (or the
/// close) is done, as one system call per megabyte instead of one per 16 KiB record; reads take
/// what the socket holds, up to ``readBuffer`` bytes, at once. Both cut the system calls and
/// the loopback's per-segment work by one to two orders of magnitude.
///
/// Not thread-safe: it has one owner at a time. It is `@unchecked Sendable` only so that it can
/// be handed to the thread that drives it.
public final class TLSConnection: @unchecked Sendable {
    private let ssl: OpaquePointer
    public let context: TLSContext
    public let socket: Int32
    private var closed = false

    /// Takes ownership of `socket`; it is closed when the connection goes away.
    public init(context: TLSContext, socket: Int32) throws(TLSError) {
        guard let ssl = SSL_new(context.pointer) else {
            close(socket)
            throw TLSError(.configuration, "cannot create a TLS session: \(OpenSSLError.drain("SSL_new"))")
        }
        self.ssl = ssl
        self.context = context
        self.socket = socket
        let reader = BIO_new_socket(socket, BIO_NOCLOSE), writer = BIO_new_socket(socket, BIO_NOCLOSE), buffer = BIO_new(BIO_f_buffer())
        guard let reader, let writer, let buffer else {
            for bio in [reader, writer, buffer] { if let bio { BIO_free(bio) } }
            SSL_free(ssl)
            close(socket)
            throw TLSError(.configuration, "cannot create the connection's BIOs: \(OpenSSLError.drain("BIO_new"))")
        }
        _ = gnt_BIO_set_write_buffer_size(buffer, Self.writeBuffer)
        BIO_push(buffer, writer)
        // The SSL object owns both chains from here on.
        SSL_set_bio(ssl, reader, buffer)
    }

    /// Bytes of records gathered before they are written to the socket.
    public static let writeBuffer = 1 << 20
    /// Bytes read from the socket at once.
    public static let readBuffer = 256 << 10

    deinit {
        SSL_free(ssl)
        if !closed { close(socket) }
    }

    /// Runs the handshake, then checks that the peer presented exactly the pinned certificate.
    /// `timeout` bounds each blocking read and write of the handshake.
    public func handshake(timeout seconds: Double, peerName: String) throws(TLSError) {
        setSocketTimeout(seconds)
        defer { setSocketTimeout(0) }
        ERR_clear_error()
        let result = context.configuration.role == .server ? SSL_accept(ssl) : SSL_connect(ssl)
        guard result == 1 else {
            throw TLSError(.handshake, "TLS handshake with \(peerName) failed: \(failureReason(result))")
        }
        guard let peer = SSL_get1_peer_certificate(ssl) else {
            throw TLSError(.handshake, "TLS handshake with \(peerName) failed: the peer presented no certificate")
        }
        defer { X509_free(peer) }
        guard X509_cmp(peer, context.peerCertificate.pointer) == 0 else {
            throw TLSError(.handshake, "TLS handshake with \(peerName) failed: the peer's certificate is not the pinned one")
        }
    }

    /// In TLS 1.3 a client finishes its handshake before the server has judged the client's
    /// certificate; a refusal arrives later as an alert. Waiting up to `timeout` for the server's
    /// first records (its session tickets, or that alert) turns a refusal into a handshake error
    /// that names it, instead of a reset in the middle of the data.
    public func awaitServerVerdict(timeout seconds: Double, peerName: String) throws(TLSError) {
        guard context.configuration.role == .client, SSL_version(ssl) == TLS1_3_VERSION else { return }
        var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        guard poll(&poller, 1, Int32(seconds * 1000)) > 0 else { return }
        let flags = fcntl(socket, F_GETFL)
        _ = fcntl(socket, F_SETFL, flags | O_NONBLOCK)
        defer { _ = fcntl(socket, F_SETFL, flags) }
        var byte: UInt8 = 0
        var count = 0
        ERR_clear_error()
        let ok = SSL_peek_ex(ssl, &byte, 1, &count)
        if ok == 1 { return }
        let code = SSL_get_error(ssl, ok)
        if code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE { return }
        let reasons = OpenSSLError.drainQueue()
        let detail = reasons.isEmpty ? "the peer closed the connection" : reasons.joined(separator: "; ")
        throw TLSError(.handshake, "TLS handshake with \(peerName) failed: the peer refused our certificate (\(detail))")
    }

    /// True when the peer has sent something not read yet (checked without blocking).
    public var hasIncomingData: Bool {
        // Records read ahead but not yet decrypted count too: the socket may be empty then.
        if SSL_has_pending(ssl) == 1 { return true }
        var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        return poll(&poller, 1, 0) > 0
    }

    /// Waits up to `timeout` for the socket to become readable.
    public func waitReadable(timeout seconds: Double) {
        var poller = pollfd(fd: socket, events: Int16(POLLIN), revents: 0)
        _ = poll(&poller, 1, Int32(seconds * 1000))
    }

    /// The application protocol both ends agreed on, if any.
    public var negotiatedProtocol: String? {
        var data: UnsafePointer<UInt8>?
        var length: UInt32 = 0
        SSL_get0_alpn_selected(ssl, &data, &length)
        guard let data, length > 0 else { return nil }
        return String(decoding: UnsafeBufferPointer(start: data, count: Int(length)), as: UTF8.self)
    }

    public var protocolVersion: String { String(cString: SSL_get_version(ssl)) }
    public var cipherName: String { SSL_get_current_cipher(ssl).flatMap { SSL_CIPHER_get_name($0) }.map { String(cString: $0) } ?? "none" }

    /// Writes all of `buffer`.
    public func write(_ buffer: UnsafeRawBufferPointer) throws(TLSError) {
        var offset = 0
        while offset < buffer.count {
            var written = 0
            ERR_clear_error()
            let ok = SSL_write_ex(ssl, buffer.baseAddress! + offset, buffer.count - offset, &written)
            guard ok == 1 else { throw transportError(Int32(ok), while: "sending") }
            offset += written
        }
        try flush(while: "sending")
    }

    /// Writes the gathered records to the socket.
    private func flush(while action: String) throws(TLSError) {
        guard let bio = SSL_get_wbio(ssl), gnt_BIO_flush(bio) != 1 else { return }
        let savedErrno = errno
        _ = OpenSSLError.drainQueue()
        throw Self.systemCallError(savedErrno, while: action)
            ?? TLSError(.transport, "\(action) failed: the socket refused the data")
    }

    /// Reads what is available, up to `buffer.count` bytes. Returns 0 only at a clean end: the
    /// peer's close_notify. A connection that ends without it throws ``TLSError/Kind/truncated``.
    public func read(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> Int {
        var count = 0
        ERR_clear_error()
        let ok = SSL_read_ex(ssl, buffer.baseAddress, buffer.count, &count)
        if ok == 1 { return count }
        if SSL_get_error(ssl, ok) == SSL_ERROR_ZERO_RETURN { return 0 }
        throw transportError(ok, while: "receiving")
    }

    /// Fills `buffer` as far as the stream allows; returns less than `buffer.count` only at the end.
    public func readFully(into buffer: UnsafeMutableRawBufferPointer) throws(TLSError) -> Int {
        var filled = 0
        while filled < buffer.count {
            let n = try read(into: UnsafeMutableRawBufferPointer(rebasing: buffer[filled...]))
            if n == 0 { break }
            filled += n
        }
        return filled
    }

    /// Sends close_notify.
    public func sendCloseNotify() throws(TLSError) {
        ERR_clear_error()
        let result = SSL_shutdown(ssl)
        guard result >= 0 else { throw transportError(result, while: "closing") }
        try flush(while: "closing")
    }

    /// After our close_notify: reads until the peer's close_notify (returns true) or until the
    /// connection ends without one (returns false). Data the peer still sends is discarded, so
    /// the socket is never closed with unread bytes (which would send a reset).
    public func awaitPeerClose(timeout seconds: Double) -> Bool {
        setSocketTimeout(seconds)
        let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 16384, alignment: 16)
        defer { scratch.deallocate() }
        while true {
            do throws(TLSError) {
                if try read(into: scratch) == 0 { return true }
            } catch {
                return false
            }
        }
    }

    /// Closes the socket at once with a reset (SO_LINGER 0), so that the peer cannot mistake a
    /// failed transfer for a finished one.
    public func abort() {
        guard !closed else { return }
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        setsockopt(socket, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        close(socket)
        closed = true
    }

    /// Closes the socket normally.
    public func closeSocket() {
        guard !closed else { return }
        close(socket)
        closed = true
    }

    private func setSocketTimeout(_ seconds: Double) {
        var value = timeval(tv_sec: Int(seconds), tv_usec: Int((seconds - Double(Int(seconds))) * 1_000_000))
        setsockopt(socket, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(socket, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    private func failureReason(_ result: Int32) -> String {
        let code = SSL_get_error(ssl, result)
        let savedErrno = errno
        let verify = SSL_get_verify_result(ssl)
        let reasons = OpenSSLError.drainQueue()
        if verify != X509_V_OK {
            return "peer certificate rejected: \(String(cString: X509_verify_cert_error_string(verify)))"
        }
        if !reasons.isEmpty { return reasons.joined(separator: "; ") }
        if code == SSL_ERROR_SYSCALL {
            if savedErrno == EAGAIN || savedErrno == EWOULDBLOCK { return "timed out" }
            if savedErrno != 0 { return String(cString: strerror(savedErrno)) }
            return "the peer closed the connection"
        }
        return "TLS error \(code)"
    }

    private func transportError(_ result: Int32, while action: String) -> TLSError {
        let code = SSL_get_error(ssl, result)
        let savedErrno = errno
        let reasons = OpenSSLError.drainQueue()
        if reasons.contains(where: { $0.contains("unexpected eof") }) {
            return TLSError(.truncated, "the peer closed the connection without finishing the stream (no TLS close_notify)")
        }
        if code == SSL_ERROR_SYSCALL {
            return Self.systemCallError(savedErrno, while: action)
                ?? TLSError(.truncated, "the peer closed the connection without finishing the stream (no TLS close_notify)")
        }
        let detail = reasons.isEmpty ? "TLS error \(code)" : reasons.joined(separator: "; ")
        return TLSError(.transport, "\(action) failed: \(detail)")
    }

    /// A failed socket call, by its errno; nil for errno 0 (no system error: the caller says
    /// what that means where it happened).
    private static func systemCallError(_ savedErrno: Int32, while action: String) -> TLSError? {
        switch savedErrno {
        case 0: return nil
        case EAGAIN, EWOULDBLOCK: return TLSError(.timeout, "timed out \(action)")
        case ECONNRESET, EPIPE: return TLSError(.truncated, "the peer reset the connection while \(action) (\(String(cString: strerror(savedErrno))))")
        default: return TLSError(.transport, "\(action) failed: \(String(cString: strerror(savedErrno)))")
        }
    }
}
