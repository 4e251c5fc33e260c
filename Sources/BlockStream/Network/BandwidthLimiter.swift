#if canImport(Glibc)
import Glibc
#endif

/// `--bwlimit`: a token bucket on the bytes handed to TLS. The bucket holds at most a quarter
/// second of traffic, so bursts stay short and the rate over any few seconds is accurate.
final class BandwidthLimiter {
    private let rate: Double
    private let capacity: Double
    private var tokens: Double
    private var last: Double

    init(bytesPerSecond: Int64) {
        rate = Double(bytesPerSecond)
        capacity = max(Double(bytesPerSecond) / 4, 65536)
        tokens = 0
        last = Monotonic.now()
    }

    /// Blocks until `bytes` may be sent.
    func acquire(_ bytes: Int) {
        var needed = Double(bytes)
        while needed > 0 {
            let now = Monotonic.now()
            tokens = min(capacity, tokens + (now - last) * rate)
            last = now
            if tokens >= min(needed, capacity) {
                let take = min(needed, tokens)
                tokens -= take
                needed -= take
                continue
            }
            let wait = (min(needed, capacity) - tokens) / rate
            usleep(useconds_t(max(1000, min(wait, 1) * 1_000_000)))
        }
    }
}
