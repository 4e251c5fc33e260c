import Foundation

/// The daemon's status file: Ganeti's `objects.ImportExportStatus`, with absent keys omitted.
/// gnt-move adds `protocol`, `digest` and `resume_offset`, which Ganeti readers ignore.
public struct ImportExportStatus: Codable, Sendable, Equatable {
    public var ctime: Double
    public var mtime: Double
    public var recent_output: [String] = []
    public var listen_port: Int?
    public var connected: Bool?
    public var progress_mbytes: Int?
    public var progress_throughput: Double?
    public var progress_percent: Double?
    public var progress_eta: Double?
    public var exit_status: Int?
    public var error_message: String?
    /// `ganeti` (v0) or `gnt-move/1`, once connected.
    public var `protocol`: String?
    /// Whole-disk digest (v1 only), `blake3-chunks-1m:<hex>` or `sha256-chunks-1m:<hex>`.
    public var digest: String?
    /// Where a resumed transfer started, in bytes (v1 only).
    public var resume_offset: Int64?
    /// Bytes handed to TLS (payload and framing, after compression), exporter side.
    public var wire_bytes: Int64?
    /// Disk bytes the exporter sent as data or zeros, not as chunks the importer already held
    /// (gnt-move/1; every pass of this daemon added up).
    public var changed_bytes: Int64?
    /// On failure: whether the daemon ended on a verdict (a chunk that did not verify, a wrong
    /// magic, a full destination…) rather than a peer that went away or a broken link.
    public var verdict: Bool?
    /// On failure: what kind of failure (``BlockStreamError/Kind``'s raw value, or `tls-` and
    /// the TLS failure's kind), for the agent's failure counters.
    public var error_kind: String?
    /// Disk bytes moved so far, exactly (`progress_mbytes` is rounded to MiB).
    public var progress_bytes: Int64?
    /// Passes a warm import received so far.
    public var passes: Int?
    /// CPU time (user and system) the daemon used, in seconds, written at exit.
    public var cpu_seconds: Double?
    /// Peak resident memory of the daemon, in KiB, written at exit.
    public var max_rss_kib: Int?

    public init(now: Double) {
        ctime = now
        mtime = now
    }

    /// Reads a status file written by a daemon.
    public static func load(path: String) throws -> ImportExportStatus {
        try JSONDecoder().decode(ImportExportStatus.self, from: Data(contentsOf: URL(fileURLWithPath: path)))
    }
}

/// Ganeti's `_CalcThroughput`: MiB/s as the slope between the oldest and newest of the recent
/// samples `(seconds, mebibytes)`.
public func calculateThroughput(_ samples: [(time: Double, mbytes: Double)]) -> Double? {
    guard let first = samples.first, let last = samples.last, last.time > first.time else { return nil }
    return (last.mbytes - first.mbytes) / (last.time - first.time)
}
