/// Everything one `gnt-move import-export` process needs: Ganeti's daemon options plus
/// gnt-move's source and destination paths.
/// `gnt-move import-export` parses its command line into this type and everyone who starts a
/// daemon renders one with ``commandLine``.
public struct ImportExportOptions: Sendable, Equatable {
    public enum Mode: String, Sendable, CaseIterable { case `import`, export }

    /// `--protocol`: `auto` offers (or accepts) gnt-move/1 and falls back to Ganeti's stream for
    /// peers that do not negotiate it; `ganeti` never uses gnt-move/1; `v1` requires it.
    public enum StreamProtocol: String, Sendable, CaseIterable { case auto, ganeti, v1 }

    public var mode: Mode
    public var statusFile: String?
    public var keyPath: String
    public var certificatePath: String
    /// The peer's certificate, Ganeti's `--ca`.
    public var caPath: String
    public var family: AddressFamily = .ipv4
    /// Import: the address to listen on (default: all of the family).
    public var bind: String?
    /// Export: where the importer listens.
    public var host: String?
    /// Import: the port to listen on (nil: ephemeral). Export: the importer's port.
    public var port: Int?
    /// Import: listen on the first free port of this range instead of `port` (firewalls).
    public var portRange: PortRange?
    /// Export: per attempt. Import: how long to wait for an authenticated connection.
    public var connectTimeout: Double
    public var connectRetries: Int = 10
    /// Import: how long one incoming connection may take to authenticate before it is dropped.
    /// Export: how long one attempt's TLS handshake may take before the exporter tries again.
    public var handshakeTimeout: Double = ImportExportOptions.defaultHandshakeTimeout
    public static let defaultHandshakeTimeout = 10.0
    public var stream = StreamSettings()
    /// For progress percent and ETA, in bytes.
    public var expectedSize: Int64?
    /// Export: the source path (nil: stdin). Import: the destination path (nil: stdout).
    public var path: String?
    /// Write each log line to stderr as well as into the status file.
    public var echoLog = true
    public var streamProtocol: StreamProtocol = .auto
    /// Export: continue from the offset the importer's journal holds (gnt-move/1).
    public var resume = false
    /// Export: bytes per second on the wire.
    public var bandwidthLimit: Int64?
    /// Import: a block device known to read as zeros already; zero ranges are skipped.
    public var targetIsZero = false
    /// The resume journal (gnt-move/1); defaults to the status file's path + `.journal`.
    public var journalPath: String?
    /// gnt-move/1: seconds a broken connection may take to come back. The exporter reconnects
    /// and resumes from the importer's journal; the importer listens again on its port for the
    /// same exporter. 0: a broken connection ends the transfer.
    public var reconnectWindow: Double = 0
    /// Import: serve passes until the exporter's final one (a warm move); passes after the first
    /// compare what the destination holds.
    public var warm = false
    /// Import: offer the digests of what the destination holds, so that only what differs is sent.
    public var compare = false
    /// Export: a warm move's pre-copy pass (not the final one).
    public var precopy = false
    /// Export, for tests and benchmarks: stop as if crashed after this many disk bytes.
    public var abortAfter: Int64?

    var effectiveJournalPath: String? { journalPath ?? statusFile.map { $0 + ".journal" } }

    public init(mode: Mode, keyPath: String, certificatePath: String, caPath: String, connectTimeout: Double? = nil) {
        self.mode = mode
        self.keyPath = keyPath
        self.certificatePath = certificatePath
        self.caPath = caPath
        // Ganeti: exporters 20 s per attempt; importers wait 180 s + 120 s shutdown timeout.
        self.connectTimeout = connectTimeout ?? (mode == .export ? 20 : 300)
    }

    /// `IE_MAGIC_RE`: what Ganeti's daemon accepts as a magic.
    static func validate(magic: String?) throws(BlockStreamError) {
        guard let magic else { return }
        let allowed = magic.utf8.allSatisfy {
            ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5a) || ($0 >= 0x61 && $0 <= 0x7a) || $0 == 0x2d || $0 == 0x5f || $0 == 0x2e
        }
        guard allowed, (5...100).contains(magic.utf8.count) else {
            throw BlockStreamError(.configuration, "invalid magic '\(magic)': it must match [-_.a-zA-Z0-9]{5,100}")
        }
    }
}
