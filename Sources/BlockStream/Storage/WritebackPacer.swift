import CFileExtents

/// Starts writeback of each 16 MiB window as soon as it is written, and waits for (then drops
/// from the page cache) the window before it.
///
/// Without this the kernel keeps a whole multi-GiB stream dirty in memory (below
/// `dirty_background_ratio`) and writes it only at the final fsync, so the disk idles during
/// the transfer and the flush adds its full duration at the end. Overlapping the two is what
/// makes the transfer finish close to the disk's speed; dropping written pages keeps a large
/// move from evicting the host's cache.
struct WritebackPacer {
    static let window: Int64 = 16 << 20
    private var started: Int64 = 0
    private var settled: Int64 = 0

    /// Call after bytes up to `end` (exclusive) have been written sequentially.
    mutating func wrote(upTo end: Int64, fd: Int32) {
        while end - started >= Self.window {
            _ = gnt_start_writeback(fd, started, Self.window)
            started += Self.window
            if started - settled > Self.window {
                _ = gnt_wait_writeback(fd, settled, Self.window)
                gnt_drop_cache(fd, settled, Self.window)
                settled += Self.window
            }
        }
    }
}
