#if canImport(Glibc)
import Glibc
#endif

/// The importer's listening socket.
public final class TCPListener: @unchecked Sendable {
    public let port: Int
    private var fd: Int32

    /// Listens on `bind` (default: every address of `family`) and `port` (0: an ephemeral one).
    public init(bind: String?, port: Int, family: AddressFamily) throws(BlockStreamError) {
        var hints = addrinfo()
        hints.ai_family = family.posix
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV
        var result: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(bind ?? family.anyAddress, String(port), &hints, &result)
        guard status == 0, let info = result else {
            throw BlockStreamError(.configuration, "cannot listen on \(bind ?? family.anyAddress) (\(family.rawValue)): \(String(cString: gai_strerror(status)))")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw BlockStreamError(.configuration, "cannot create a socket: \(systemError())") }
        var on: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        if family == .ipv6 { setsockopt(fd, Int32(IPPROTO_IPV6), IPV6_V6ONLY, &on, socklen_t(MemoryLayout<Int32>.size)) }
        guard Glibc.bind(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            let reason = systemError()
            Glibc.close(fd)
            throw BlockStreamError(.listen, "cannot listen on \(bind ?? family.anyAddress) port \(port): \(reason)")
        }
        guard listen(fd, 16) == 0 else {
            let reason = systemError()
            Glibc.close(fd)
            throw BlockStreamError(.listen, "listen failed: \(reason)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        _ = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        let isIPv6 = storage.ss_family == sa_family_t(AF_INET6)
        let boundPort: UInt16 = withUnsafePointer(to: &storage) { pointer in
            if isIPv6 {
                return pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
            }
            return pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
        }
        // Non-blocking, so that a connection that went away between poll and accept cannot
        // block the accepting thread.
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        self.fd = fd
        self.port = Int(boundPort)
    }

    /// Listens on the first port of `range` that can be bound, trying each in turn (another
    /// daemon, or anything else, may hold some); fails naming the range when none can.
    public static func firstFree(in range: PortRange, bind: String?, family: AddressFamily) throws(BlockStreamError) -> TCPListener {
        var last: BlockStreamError?
        for port in range.ports {
            do throws(BlockStreamError) {
                return try TCPListener(bind: bind, port: port, family: family)
            } catch {
                last = error
            }
        }
        throw BlockStreamError(.listen, "no free port in the data port range \(range) on \(bind ?? family.anyAddress): "
            + "all \(range.count) port(s) are taken or refused (last: \(last?.message ?? "none tried"))")
    }

    deinit { close() }

    /// The listening descriptor, for polling; -1 once closed.
    public var descriptor: Int32 { fd }

    /// Stops listening: later connection attempts are refused by the kernel.
    public func close() {
        guard fd >= 0 else { return }
        _ = Glibc.close(fd)
        fd = -1
    }

    /// Accepts one connection that is already waiting; nil when there is none.
    public func acceptReady() throws(BlockStreamError) -> (socket: Int32, peer: String)? {
        while true {
            var storage = sockaddr_storage()
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            let client = withUnsafeMutablePointer(to: &storage) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.accept(fd, $0, &length) }
            }
            if client < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                if errno == EAGAIN || errno == EWOULDBLOCK { return nil }
                throw BlockStreamError(.connect, "accepting a connection failed: \(systemError())")
            }
            _ = fcntl(client, F_SETFD, FD_CLOEXEC)
            TransferSocket.configure(client)
            return (client, TransferSocket.describe(&storage))
        }
    }
}
