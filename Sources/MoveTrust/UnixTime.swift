#if canImport(Glibc)
import Glibc
#endif

/// Seconds since the epoch, and their UTC rendering.
public enum UnixTime {
    public static func now() -> Int64 { Int64(time(nil)) }

    /// `2026-04-30T12:00:00Z`
    public static func iso8601(_ seconds: Int64) -> String { format(seconds, "%Y-%m-%dT%H:%M:%SZ", utc: true) }

    /// Ganeti's `TimestampForFilename()`: `%Y-%m-%d_%H_%M_%S` in local time.
    public static func forFilename(_ seconds: Int64) -> String { format(seconds, "%Y-%m-%d_%H_%M_%S", utc: false) }

    static func format(_ seconds: Int64, _ pattern: String, utc: Bool) -> String {
        var t = time_t(seconds)
        var parts = tm()
        if utc { gmtime_r(&t, &parts) } else { localtime_r(&t, &parts) }
        var buffer = [CChar](repeating: 0, count: 64)
        let length = strftime(&buffer, buffer.count, pattern, &parts)
        return String(decoding: buffer.prefix(length).map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
