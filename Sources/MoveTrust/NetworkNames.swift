#if canImport(Glibc)
import Glibc
#endif

/// Host and port validation as Ganeti's `netutils` does it for relayed destinations.
public enum NetworkNames {
    public static func isIPv4(_ text: String) -> Bool {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1
    }

    public static func isIPv6(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    /// 127.0.0.0/8 or ::1 (and ::ffff:127.x.y.z): an address only this host can reach.
    public static func isLoopback(_ address: String) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 { return UInt32(bigEndian: v4.s_addr) >> 24 == 127 }
        let lower = address.lowercased()
        if lower.hasPrefix("::ffff:") { return isLoopback(String(lower.dropFirst(7))) }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return lower == "localhost" }
        return withUnsafeBytes(of: &v6) { bytes in bytes.prefix(15).allSatisfy { $0 == 0 } && bytes[15] == 1 }
    }

    /// 0.0.0.0 or `::`: every address of the host.
    public static func isWildcard(_ address: String) -> Bool {
        var v4 = in_addr()
        if inet_pton(AF_INET, address, &v4) == 1 { return v4.s_addr == 0 }
        var v6 = in6_addr()
        guard inet_pton(AF_INET6, address, &v6) == 1 else { return false }
        return withUnsafeBytes(of: &v6) { bytes in bytes.allSatisfy { $0 == 0 } }
    }

    /// `Hostname.GetNormalizedName`: lower case, `^[a-z0-9._-]{1,255}$`, no empty label, one
    /// trailing dot dropped.
    public static func normalizedHostname(_ name: String) -> String? {
        let lower = name.lowercased()
        guard (1...255).contains(lower.utf8.count),
              lower.utf8.allSatisfy({ (0x61...0x7a).contains($0) || (0x30...0x39).contains($0) || $0 == 0x2e || $0 == 0x5f || $0 == 0x2d }),
              !lower.contains(".."), !lower.hasPrefix(".") else { return nil }
        var result = Substring(lower)
        while result.hasSuffix(".") { result = result.dropLast() }
        return String(result)
    }

    /// `ValidateServiceName`: an integer 0..65535, or a name matching `^[-_.a-zA-Z0-9]{1,128}$`
    /// resolved through the services database. Returns the port number.
    public static func port(_ value: JSONValue) -> Int? {
        switch value {
        case .number(let n):
            guard let i = n.integer, (0..<65536).contains(i) else { return nil }
            return Int(i)
        case .string(let s):
            if let i = Int(s) { return (0..<65536).contains(i) ? i : nil }
            guard (1...128).contains(s.utf8.count),
                  s.utf8.allSatisfy({ Salt.isAlphanumeric($0) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e }),
                  let entry = getservbyname(s, "tcp") else { return nil }
            return Int(UInt16(bigEndian: UInt16(truncatingIfNeeded: entry.pointee.s_port)))
        default:
            return nil
        }
    }
}
