import CFileExtents

/// Starts writeback of written data as soon as about 16 MiB of it (a window) has gathered, or
/// when the writes jump ahead (over a hole of a sparse disk), and waits for (then drops from the
/// page cache) the oldest ranges once more than a window of data is in flight.
///
/// Without this the kernel keeps a whole multi-GiB stream dirty in memory (below
/// `dirty_background_ratio`) and writes it only at the final fsync, so the disk idles during
/// the transfer and the flush adds its full duration at the end. Overlapping the two is what
/// makes the transfer finish close to the disk's speed; dropping written pages keeps a large
/// move from evicting the host's cache. The work is per range of data written, never per window
/// of the disk: a hole of any length costs nothing.
struct WritebackPacer {
    static let window: Int64 = 16 << 20
    /// Written, writeback not started yet.
    private var pending: Range<Int64> = 0..<0
    /// Writeback started, not yet waited for; oldest first.
    private var inFlight: [Range<Int64>] = []
    private var inFlightBytes: Int64 = 0

    /// Call after bytes from `start` up to `end` (exclusive) have been written.
    mutating func wrote(from start: Int64, upTo end: Int64, fd: Int32) {
        guard end > start else { return }
        if start != pending.upperBound {
            startWriteback(fd: fd)
            pending = start..<start
        }
        pending = pending.lowerBound..<end
        if Int64(pending.count) >= Self.window { startWriteback(fd: fd) }
    }

    private mutating func startWriteback(fd: Int32) {
        guard !pending.isEmpty else { return }
        _ = gnt_start_writeback(fd, pending.lowerBound, Int64(pending.count))
        inFlight.append(pending)
        inFlightBytes += Int64(pending.count)
        pending = pending.upperBound..<pending.upperBound
        while inFlight.count > 1 && inFlightBytes > Self.window {
            let oldest = inFlight.removeFirst()
            _ = gnt_wait_writeback(fd, oldest.lowerBound, Int64(oldest.count))
            gnt_drop_cache(fd, oldest.lowerBound, Int64(oldest.count))
            inFlightBytes -= Int64(oldest.count)
        }
    }
}
