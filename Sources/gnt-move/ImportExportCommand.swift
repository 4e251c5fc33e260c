import ArgumentParser
import BlockStream

/// `gnt-move import-export`: one disk's import or export daemon, with Ganeti's options.
struct ImportExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-export",
        abstract: "Stream one disk over mutually authenticated TLS (Ganeti's import-export daemon).",
        discussion: """
        The importer is the TLS server and the exporter the client; each side presents --key/--cert \
        and trusts only the peer certificate in --ca. The stream is Ganeti's: C("M=" + magic ‖ data). \
        STATUSFILE receives Ganeti's JSON status (listen_port, connected, progress, exit_status, \
        error_message). Exit code 0 only when the whole stream arrived and was written and flushed.
        """)

    enum Mode: String, ExpressibleByArgument { case `import`, export }

    @Argument(help: "Status file (JSON, rewritten atomically).") var statusFile: String
    @Argument(help: "import or export.") var mode: Mode

    @Option(help: ArgumentHelp("Own private key (PEM).", valueName: "FILE")) var key: String
    @Option(help: ArgumentHelp("Own certificate (PEM).", valueName: "FILE")) var cert: String
    @Option(help: ArgumentHelp("The peer's certificate: the only one trusted.", valueName: "FILE")) var ca: String
    @Option(help: "Import: address to listen on (default: all addresses of the family).") var bind: String?
    @Flag(help: "Use IPv4 (default).") var ipv4 = false
    @Flag(help: "Use IPv6.") var ipv6 = false
    @Option(help: "Export: the importer's host.") var host: String?
    @Option(help: "Export: the importer's port. Import: port to listen on (default: ephemeral).") var port: Int?
    @Option(name: .customLong("connect-timeout"), help: "Seconds: export, per connection attempt (default 20); import, to wait for an authenticated connection (default 300).")
    var connectTimeout: Double?
    @Option(name: .customLong("connect-retries"), help: "Export: further attempts after a failed connect, 1 s apart.") var connectRetries: Int = 10
    @Option(name: .customLong("handshake-timeout"), help: "Seconds: import, for each incoming connection to authenticate (others are served meanwhile); export, per TLS handshake attempt (default 10).")
    var handshakeTimeout: Double = ImportExportOptions.defaultHandshakeTimeout
    @Option(help: "none, gzip, gzip-fast, gzip-slow or zstd; both ends must agree.") var compress: String = "none"
    @Option(help: "Magic sent (export) or required (import) at the start of the stream.") var magic: String?
    @Option(name: .customLong("expected-size"), help: "Expected size in MiB, for progress percent and ETA; import: the most the destination receives.") var expectedSize: Int64?
    @Option(help: ArgumentHelp("Export: read this file or device instead of stdin.", valueName: "PATH")) var source: String?
    @Option(help: ArgumentHelp("Import: write this file or device instead of stdout.", valueName: "PATH")) var dest: String?
    @Option(name: .customLong("protocol"), help: "auto (gnt-move/1 when both ends speak it, else Ganeti's stream), ganeti, or v1.")
    var streamProtocol: String = "auto"
    @Flag(help: "Export: continue where the importer's journal says the last attempt stopped (gnt-move/1).") var resume = false
    @Option(help: "Export: limit the wire rate to this many bytes per second (K, M, G suffixes).") var bwlimit: ByteSize?
    @Flag(name: .customLong("target-is-zero"), help: "Import: the destination device already reads as zeros; skip zero ranges.")
    var targetIsZero = false
    @Option(help: ArgumentHelp("The resume journal (default: STATUSFILE.journal).", valueName: "FILE")) var journal: String?
    @Option(name: .customLong("abort-after"), help: .hidden) var abortAfter: Int64?

    func validate() throws {
        if ipv4 && ipv6 { throw ValidationError("--ipv4 and --ipv6 exclude each other") }
        if mode == .export && (host == nil || port == nil) { throw ValidationError("export needs --host and --port") }
        if mode == .import && source != nil { throw ValidationError("--source is for export") }
        if mode == .export && dest != nil { throw ValidationError("--dest is for import") }
        if let port, !(0...65535).contains(port) { throw ValidationError("--port \(port) is not a TCP port") }
        if let connectTimeout, connectTimeout <= 0 { throw ValidationError("--connect-timeout must be positive") }
        if let expectedSize, expectedSize < 0 || expectedSize.multipliedReportingOverflow(by: 1_048_576).overflow {
            throw ValidationError("--expected-size \(expectedSize) is not a size in MiB")
        }
        if handshakeTimeout <= 0 { throw ValidationError("--handshake-timeout must be positive") }
        if connectRetries < 0 { throw ValidationError("--connect-retries must not be negative") }
        if resume && mode == .import { throw ValidationError("--resume is for export; the importer resumes from its journal when asked") }
        if resume && streamProtocol == "ganeti" { throw ValidationError("--resume needs gnt-move/1, not --protocol ganeti") }
    }

    func run() throws {
        var options = ImportExportOptions(mode: mode == .import ? .import : .export, keyPath: key, certificatePath: cert,
                                          caPath: ca, connectTimeout: connectTimeout)
        options.statusFile = statusFile
        options.family = ipv6 ? .ipv6 : .ipv4
        options.bind = bind
        options.host = host
        options.port = port
        options.connectRetries = connectRetries
        options.handshakeTimeout = handshakeTimeout
        do {
            options.stream.compression = try CompressionMethod(name: compress)
        } catch {
            throw ValidationError(error.message)
        }
        options.stream.magic = magic
        options.expectedSize = expectedSize.map { $0.multipliedReportingOverflow(by: 1_048_576).partialValue }
        options.path = mode == .import ? dest : source
        guard let chosen = ImportExportOptions.StreamProtocol(rawValue: streamProtocol) else {
            throw ValidationError("--protocol must be auto, ganeti or v1")
        }
        options.streamProtocol = chosen
        options.resume = resume
        options.bandwidthLimit = bwlimit?.bytes
        options.targetIsZero = targetIsZero
        options.journalPath = journal
        options.abortAfter = abortAfter
        let status = ImportExportDaemon.run(options)
        if status != 0 { throw ExitCode(status) }
    }
}
