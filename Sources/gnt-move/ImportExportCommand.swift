import ArgumentParser
import BlockStream

/// `gnt-move import-export`: one disk's import or export daemon, with Ganeti's options. Its
/// options are declared with the names of ``ImportExportOptions/Option``, which is also what
/// ``ImportExportOptions/commandLine`` renders.
struct ImportExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: ImportExportOptions.subcommand,
        abstract: "Stream one disk over mutually authenticated TLS (Ganeti's import-export daemon).",
        discussion: """
        The importer is the TLS server and the exporter the client; each side presents --key/--cert \
        and trusts only the peer certificate in --ca. The stream is Ganeti's: C("M=" + magic ‖ data). \
        STATUSFILE receives Ganeti's JSON status (listen_port, connected, progress, exit_status, \
        error_message). The daemon succeeds only when the whole stream arrived and was written and \
        flushed. \(ExitCodes.pointer)
        """)

    @Argument(help: "Status file: Ganeti's JSON status, rewritten atomically.") var statusFile: String
    @Argument(help: "Which end of the stream this daemon is.") var mode: ImportExportOptions.Mode

    @Option(name: .daemon(.key), help: ArgumentHelp("Own private key (PEM).", valueName: "FILE")) var key: String
    @Option(name: .daemon(.cert), help: ArgumentHelp("Own certificate (PEM).", valueName: "FILE")) var cert: String
    @Option(name: .daemon(.ca), help: ArgumentHelp("The peer's certificate: the only one trusted.", valueName: "FILE")) var ca: String
    @Option(name: .daemon(.bind), help: "Import: address to listen on (default: all addresses of the family).") var bind: String?
    @Flag var family: AddressFamily = .ipv4
    @Option(name: .daemon(.host), help: "Export: the importer's host.") var host: String?
    @Option(name: .daemon(.port), help: "Export: the importer's port. Import: port to listen on (default: ephemeral).") var port: Int?
    @Option(name: .daemon(.portRange), help: ArgumentHelp("Import: listen on the first free port of this range instead (for firewalls); fails naming the range when every port is taken.", valueName: "LOW-HIGH"))
    var portRange: String?
    @Option(name: .daemon(.connectTimeout), help: "Seconds: export, per connection attempt (default 20); import, to wait for an authenticated connection (default 300).")
    var connectTimeout: Double?
    @Option(name: .daemon(.connectRetries), help: "Export: further attempts after a failed connect, 1 s apart.") var connectRetries: Int = 10
    @Option(name: .daemon(.handshakeTimeout), help: "Seconds: import, for each incoming connection to authenticate (others are served meanwhile); export, per TLS handshake attempt.")
    var handshakeTimeout: Double = ImportExportOptions.defaultHandshakeTimeout
    @Option(name: .daemon(.compress), help: "Stream compression; both ends must agree.") var compress: CompressionMethod = .none
    @Option(name: .daemon(.magic), help: "Magic sent (export) or required (import) at the start of the stream.") var magic: String?
    @Option(name: .daemon(.expectedSize), help: "Expected size in MiB, for progress percent and ETA; import: the most the destination receives.")
    var expectedSize: Int64?
    @Option(name: .daemon(.source), help: ArgumentHelp("Export: read this file or device instead of stdin.", valueName: "PATH")) var source: String?
    @Option(name: .daemon(.dest), help: ArgumentHelp("Import: write this file or device instead of stdout.", valueName: "PATH")) var dest: String?
    @Option(name: .daemon(.streamProtocol), help: "auto: gnt-move/1 when both ends speak it, else Ganeti's stream; ganeti: never gnt-move/1; v1: require it.")
    var streamProtocol: ImportExportOptions.StreamProtocol = .auto
    @Flag(name: .daemon(.resume), help: "Export: continue where the importer's journal says the last attempt stopped (gnt-move/1).") var resume = false
    @Option(name: .daemon(.bwlimit), help: "Export: limit the wire rate to this many bytes per second (K, M, G suffixes).") var bwlimit: ByteSize?
    @Flag(name: .daemon(.targetIsZero), help: "Import: the destination device already reads as zeros; skip zero ranges.")
    var targetIsZero = false
    @Option(name: .daemon(.journal), help: ArgumentHelp("The resume journal (default: STATUSFILE.journal).", valueName: "FILE")) var journal: String?
    @Option(name: .daemon(.reconnect),
            help: ArgumentHelp("gnt-move/1: when the connection breaks, export reconnects and resumes, import listens again on its port, for up to this many seconds (default 0: the transfer ends).", valueName: "SECONDS"))
    var reconnect: Double = 0
    @Flag(name: .daemon(.warm), help: "Import: receive passes until the exporter's final one (a warm move); every pass after the first sends only the chunks that differ from what the destination holds (gnt-move/1).")
    var warm = false
    @Flag(name: .daemon(.compare), help: "Import: the destination holds an earlier copy: offer the digests of its chunks so that only the chunks that differ are sent (gnt-move/1).")
    var compare = false
    @Flag(name: .daemon(.precopy), help: "Export: a pre-copy pass of a warm move; the importer waits for another pass after it (gnt-move/1).")
    var precopy = false
    @Option(name: .daemon(.chunkDigest), help: "gnt-move/1: checksum chunks with this algorithm only (default: BLAKE3 when the peer knows it, else SHA-256); an importer refuses an exporter that does not offer it, an exporter an older importer that only knows SHA-256.")
    var chunkDigest: ChunkDigestAlgorithm?
    @Option(name: .daemon(.abortAfter), help: .hidden) var abortAfter: Int64?

    func validate() throws {
        if mode == .export && (host == nil || port == nil) { throw ValidationError("export needs --host and --port") }
        if mode == .import && source != nil { throw ValidationError("--source is for export") }
        if mode == .export && dest != nil { throw ValidationError("--dest is for import") }
        if let port, !(0...65535).contains(port) { throw ValidationError("--port \(port) is not a TCP port") }
        if let portRange {
            if mode == .export { throw ValidationError("--port-range is for import") }
            if port != nil { throw ValidationError("--port and --port-range exclude each other") }
            do { _ = try PortRange(parsing: portRange) } catch { throw ValidationError("--port-range: \(error)") }
        }
        if let connectTimeout, connectTimeout <= 0 { throw ValidationError("--connect-timeout must be positive") }
        if let expectedSize, expectedSize < 0 || expectedSize.multipliedReportingOverflow(by: ImportExportOptions.expectedSizeUnit).overflow {
            throw ValidationError("--expected-size \(expectedSize) is not a size in MiB")
        }
        if !(0...86400).contains(reconnect) { throw ValidationError("--reconnect must be from 0 to 86400 seconds") }
        if handshakeTimeout <= 0 { throw ValidationError("--handshake-timeout must be positive") }
        if connectRetries < 0 { throw ValidationError("--connect-retries must not be negative") }
        if resume && mode == .import { throw ValidationError("--resume is for export; the importer resumes from its journal when asked") }
        if (warm || compare) && mode == .export { throw ValidationError("--warm and --compare are for import") }
        if precopy && mode == .import { throw ValidationError("--precopy is for export") }
        if (warm || compare || precopy) && streamProtocol == .ganeti { throw ValidationError("--warm, --compare and --precopy need gnt-move/1, not --protocol ganeti") }
        if resume && streamProtocol == .ganeti { throw ValidationError("--resume needs gnt-move/1, not --protocol ganeti") }
        if chunkDigest != nil && streamProtocol == .ganeti { throw ValidationError("--chunk-digest needs gnt-move/1, not --protocol ganeti") }
    }

    /// The parsed command line (after ``validate()``).
    var options: ImportExportOptions {
        var options = ImportExportOptions(mode: mode, keyPath: key, certificatePath: cert, caPath: ca, connectTimeout: connectTimeout)
        options.statusFile = statusFile
        options.family = family
        options.bind = bind
        options.host = host
        options.port = port
        options.portRange = portRange.flatMap { try? PortRange(parsing: $0) }
        options.connectRetries = connectRetries
        options.handshakeTimeout = handshakeTimeout
        options.stream.compression = compress
        options.stream.magic = magic
        options.stream.chunkDigest = chunkDigest
        options.expectedSize = expectedSize.map { $0 * ImportExportOptions.expectedSizeUnit }
        options.path = mode == .import ? dest : source
        options.streamProtocol = streamProtocol
        options.resume = resume
        options.bandwidthLimit = bwlimit?.bytes
        options.targetIsZero = targetIsZero
        options.journalPath = journal
        options.reconnectWindow = reconnect
        options.abortAfter = abortAfter
        options.warm = warm
        options.compare = compare
        options.precopy = precopy
        return options
    }

    func run() throws {
        let status = ImportExportDaemon.run(options)
        if status != 0 { throw ExitCode(status) }
    }
}
