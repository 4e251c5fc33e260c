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
}
