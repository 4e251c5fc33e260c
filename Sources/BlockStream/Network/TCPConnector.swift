#if canImport(Glibc)
import Glibc
#endif

/// The exporter's side: connect with a timeout per attempt and a number of retries, as
/// Ganeti's socat does (`connect-timeout=20,retry=10,intervall=1`).
public struct TCPConnector: Sendable {
    public var host: String
    public var port: Int
    public var family: AddressFamily
    public var attemptTimeout: Double
    public var retries: Int
    public var retryInterval: Double

    public init(host: String, port: Int, family: AddressFamily, attemptTimeout: Double = 20, retries: Int = 10, retryInterval: Double = 1) {
        self.host = host
        self.port = port
        self.family = family
        self.attemptTimeout = attemptTimeout
        self.retries = retries
        self.retryInterval = retryInterval
    }

    public var peerName: String { family == .ipv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// Connects, retrying on failure; `onRetry` hears of each failed attempt.
    public func connect(onRetry: (String) -> Void = { _ in }) throws(BlockStreamError) -> Int32 {
        try retrying(onRetry: onRetry) { try connectOnce() }
    }

    /// Runs `attempt` up to `retries + 1` times, `retryInterval` apart, until it succeeds; the
    /// final error names the last failure. The exporter retries connect and TLS handshake together.
    public func retrying<T>(onRetry: (String) -> Void = { _ in }, _ attempt: () throws -> T) throws(BlockStreamError) -> T {
        var lastFailure = ""
        for number in 0...max(0, retries) {
            if number > 0 {
                onRetry("connection attempt \(number) to \(peerName) failed: \(lastFailure); retrying in \(retryInterval) s")
                usleep(useconds_t(retryInterval * 1_000_000))
            }
            do {
                return try attempt()
            } catch {
                lastFailure = "\(error)"
            }
        }
        throw BlockStreamError(.connect, "cannot connect to \(peerName) after \(retries + 1) attempt(s): \(lastFailure)")
    }

    /// One attempt, without retrying; the error's message is the bare reason.
    public func connectOnce() throws(BlockStreamError) -> Int32 {
        switch attemptOnce() {
        case .success(let fd): return fd
        case .failure(let reason): throw BlockStreamError(.connect, reason.message)
        }
    }

    private func attemptOnce() -> Result<Int32, AttemptFailure> {
        var hints = addrinfo()
        hints.ai_family = family.posix
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, String(port), &hints, &result)
        guard status == 0, let info = result else { return .failure(AttemptFailure(String(cString: gai_strerror(status)))) }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0)
        guard fd >= 0 else { return .failure(AttemptFailure(systemError())) }
        if Glibc.connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) != 0 {
            guard errno == EINPROGRESS else {
                let reason = systemError()
                close(fd)
                return .failure(AttemptFailure(reason))
            }
            var poller = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            let ready = poll(&poller, 1, Int32(attemptTimeout * 1000))
            if ready <= 0 {
                close(fd)
                return .failure(AttemptFailure(ready == 0 ? "timed out after \(attemptTimeout) s" : systemError()))
            }
            var error: Int32 = 0
            var length = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length)
            if error != 0 {
                close(fd)
                return .failure(AttemptFailure(systemError(error)))
            }
        }
        let flags = fcntl(fd, F_GETFL)
        _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
        TransferSocket.configure(fd)
        return .success(fd)
    }
}

private struct AttemptFailure: Error {
    let message: String
    init(_ message: String) { self.message = message }
}
