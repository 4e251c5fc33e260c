#if canImport(Glibc)
import Glibc
#endif

/// `--ipv4` or `--ipv6`, as Ganeti passes them: the raw values are the flags' names.
public enum AddressFamily: String, Sendable, CaseIterable {
    case ipv4, ipv6

    var posix: Int32 { self == .ipv4 ? AF_INET : AF_INET6 }

    /// The wildcard address of the family.
    var anyAddress: String { self == .ipv4 ? "0.0.0.0" : "::" }
}

/// Socket options every transfer connection gets.
enum TransferSocket {
    /// Ganeti's socat keepalive: idle 60 s, interval 10 s, 5 probes. A dead peer is noticed in
    /// about 110 s even when no data flows. No Nagle delay: TLS records are gathered into large
    /// writes already (see `TLSConnection`), and a small control message (WELCOME, FINAL) held
    /// back until the peer's delayed acknowledgement would cost 40 ms per exchange.
    static func configure(_ fd: Int32) {
        var on: Int32 = 1, idle: Int32 = 60, interval: Int32 = 10, count: Int32 = 5
        let size = socklen_t(MemoryLayout<Int32>.size)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_NODELAY, &on, size)
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, size)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPIDLE, &idle, size)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPINTVL, &interval, size)
        setsockopt(fd, Int32(IPPROTO_TCP), TCP_KEEPCNT, &count, size)
    }

    /// Renders a socket address as `host:port` or `[v6]:port`.
    static func describe(_ storage: inout sockaddr_storage) -> String {
        var host = [CChar](repeating: 0, count: Int(NI_MAXHOST))
        var service = [CChar](repeating: 0, count: Int(NI_MAXSERV))
        let length = socklen_t(storage.ss_family == sa_family_t(AF_INET6) ? MemoryLayout<sockaddr_in6>.size : MemoryLayout<sockaddr_in>.size)
        let result = withUnsafePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                getnameinfo($0, length, &host, socklen_t(host.count), &service, socklen_t(service.count), NI_NUMERICHOST | NI_NUMERICSERV)
            }
        }
        guard result == 0 else { return "unknown peer" }
        func text(_ chars: [CChar]) -> String { String(decoding: chars.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self) }
        let h = text(host), s = text(service)
        return storage.ss_family == sa_family_t(AF_INET6) ? "[\(h)]:\(s)" : "\(h):\(s)"
    }
}
