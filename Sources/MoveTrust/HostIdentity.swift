#if canImport(Glibc)
import Glibc
#endif

/// This host's fully qualified name, as Ganeti's `netutils.Hostname.GetSysName()` finds it:
/// the canonical name of `gethostname()`, or the plain host name when resolution fails.
public enum HostIdentity {
    public static func fqdn() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "localhost" }
        let host = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        var hints = addrinfo()
        hints.ai_flags = AI_CANONNAME
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let result else { return host }
        defer { freeaddrinfo(result) }
        guard let canonical = result.pointee.ai_canonname else { return host }
        let name = String(cString: canonical)
        return name.isEmpty ? host : name
    }

    /// The numeric addresses `host` resolves to (IPv4 and IPv6, in the resolver's order); an
    /// address literal resolves to itself; empty when it does not resolve.
    public static func addresses(of host: String) -> [String] {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &result) == 0, let result else { return [] }
        defer { freeaddrinfo(result) }
        var addresses: [String] = []
        var entry: UnsafeMutablePointer<addrinfo>? = result
        while let current = entry {
            var text = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if getnameinfo(current.pointee.ai_addr, current.pointee.ai_addrlen, &text, socklen_t(text.count), nil, 0, NI_NUMERICHOST) == 0 {
                let address = String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !addresses.contains(address) { addresses.append(address) }
            }
            entry = current.pointee.ai_next
        }
        return addresses
    }
}
