import OpenSSLSupport
#if canImport(Glibc)
import Glibc
#endif

/// One disk's import or export: connect (or listen), authenticate, stream, report.
public enum ImportExportDaemon {
    /// Runs the transfer; returns the process exit code (0 only when the whole stream arrived and
    /// was written and flushed). The status file records the outcome either way.
    public static func run(_ options: ImportExportOptions, onListening: (Int) -> Void = { _ in }) -> Int32 {
        signal(SIGPIPE, SIG_IGN)
        let expected = options.expectedSize
        let reporter = StatusReporter(path: options.statusFile, expectedBytes: expected, echoToStderr: options.echoLog)
        reporter.start()
        do {
            try ImportExportOptions.validate(magic: options.stream.magic)
            switch options.mode {
            case .import: try runImport(options, reporter: reporter, onListening: onListening)
            case .export: try runExport(options, reporter: reporter)
            }
            reporter.finish(error: nil)
            return 0
        } catch {
            reporter.finish(error: error)
            return 1
        }
    }

    static func tlsContext(_ options: ImportExportOptions, role: TLSConfiguration.Role, offerV1: Bool) throws -> TLSContext {
        try TLSContext(TLSConfiguration(role: role, keyPath: options.keyPath, certificatePath: options.certificatePath,
                                        peerCertificatePath: options.caPath,
                                        applicationProtocols: offerV1 ? [V1Protocol.alpn] : []))
    }

    /// Decides the stream format after the handshake and reports the connection. Returns true
    /// for gnt-move/1. A refused negotiation closes the connection.
    static func negotiate(_ connection: TLSConnection, _ options: ImportExportOptions, peer: String,
                          reporter: StatusReporter) throws -> Bool {
        let v1 = connection.negotiatedProtocol == V1Protocol.alpn
        var refusal: String?
        if !v1 && options.streamProtocol == .v1 { refusal = "\(peer) does not speak gnt-move/1, which --protocol v1 requires" }
        if !v1 && options.resume { refusal = "--resume needs gnt-move/1, which \(peer) does not speak" }
        if let refusal {
            connection.abort()
            throw BlockStreamError(.protocolError, refusal)
        }
        let format = v1 ? V1Protocol.alpn : "ganeti"
        reporter.log("connected with \(peer) (\(connection.protocolVersion), \(connection.cipherName), stream \(format))")
        reporter.connected(protocol: format)
        return v1
    }

    static func journalBinding(_ options: ImportExportOptions, context: TLSContext, role: String, size: Int64) throws -> TransferJournal.Binding {
        let own: String
        do {
            own = try X509Certificate(pem: String(contentsOfFile: options.certificatePath, encoding: .utf8)).sha256Fingerprint
        } catch {
            throw BlockStreamError(.configuration, "cannot read certificate \(options.certificatePath): \(error)")
        }
        return TransferJournal.Binding(role: role, magic: options.stream.magic, size: size, chunk_size: V1Protocol.chunkSize,
                                       local_certificate: own, peer_certificate: context.peerCertificate.sha256Fingerprint)
    }

    static func runImport(_ options: ImportExportOptions, reporter: StatusReporter, onListening: (Int) -> Void) throws {
        let context = try tlsContext(options, role: .server, offerV1: options.streamProtocol != .ganeti)
        // The importer never writes past --expected-size (nor past a device's capacity).
        let sink = try BlockSink(path: options.path, allotted: options.expectedSize)
        // A firewall's range (--port-range): the first free port of it; else --port or ephemeral.
        let listener = if let range = options.portRange {
            try TCPListener.firstFree(in: range, bind: options.bind, family: options.family)
        } else {
            try TCPListener(bind: options.bind, port: options.port ?? 0, family: options.family)
        }
        reporter.log("listening on \(options.bind ?? options.family.anyAddress) port \(listener.port)")
        reporter.listening(port: listener.port)
        onListening(listener.port)

        // Keep listening after a failed handshake, as Ganeti's socat listener does ("forever"):
        // a stray connection must not end the import. Connections are authenticated side by
        // side, each within --handshake-timeout, so an idle or hostile one cannot hold up the
        // exporter; only the first that authenticates is used.
        var (connection, peer) = try authenticatedConnection(listener, context: context, options, reporter: reporter, within: options.connectTimeout)
        guard try negotiate(connection, options, peer: "the exporter at \(peer)", reporter: reporter) else {
            if options.warm || options.compare { throw BlockStreamError(.protocolError, "the exporter at \(peer) does not speak gnt-move/1, which a warm or compared import needs") }
            try GanetiStreamImporter(settings: options.stream, reporter: reporter).run(connection: connection, sink: sink)
            reporter.log("received \(sink.bytesWritten) bytes into \(sink.name)")
            return
        }
        var importer = V1StreamImporter(settings: options.stream, reporter: reporter, journalPath: options.effectiveJournalPath,
                                        targetIsZero: options.targetIsZero, compare: options.compare,
                                        binding: { size in try journalBinding(options, context: context, role: "import", size: size) })
        importer.acceptsPrecopy = options.warm
        var passes = 0
        while true {
            // What arrived and verified is durable and journaled; the same exporter (the pinned
            // certificate, the same magic) may come back to the same port and resume.
            let pass = try continuingAfterBreaks(options, reporter: reporter, on: connection,
                                                 waiting: "listening again on port \(listener.port) for the exporter to resume") { connection, _ in
                try importer.run(connection: connection, sink: sink)
            } connectAgain: {
                let again = try TCPListener(bind: options.bind, port: listener.port, family: options.family)
                let (next, peer) = try authenticatedConnection(again, context: context, options, reporter: reporter, within: options.reconnectWindow)
                return (next, "the exporter at \(peer)")
            }
            passes += 1
            reporter.update {
                $0.digest = pass.digest
                if options.warm { $0.passes = passes }
            }
            guard options.warm, !pass.final else {
                reporter.log("received the disk into \(sink.name); digest \(pass.digest) matches the exporter's")
                return
            }
            // A warm move: the source still runs; the next pass sends only what changed since.
            reporter.log("pass \(passes) received (digest \(pass.digest)); listening on port \(listener.port) for the next pass")
            reporter.update { $0.connected = false }
            importer.compare = true
            importer.knownHeld = pass.held
            let again = try TCPListener(bind: options.bind, port: listener.port, family: options.family)
            (connection, peer) = try authenticatedConnection(again, context: context, options, reporter: reporter, within: options.connectTimeout)
            guard try negotiate(connection, options, peer: "the exporter at \(peer)", reporter: reporter) else {
                connection.abort()
                throw BlockStreamError(.protocolError, "the exporter at \(peer) came back without gnt-move/1; a warm import needs it")
            }
        }
    }

    /// Runs a gnt-move/1 `transfer` on `connection`. With `--reconnect`, a connection that breaks
    /// (not a verdict) is replaced by `connectAgain` (which must negotiate gnt-move/1 again) and
    /// the transfer runs again, told how many breaks came before; each break gets the whole
    /// window, and a link that breaks more than ``maxBreaks`` times ends the transfer.
    static func continuingAfterBreaks<T>(_ options: ImportExportOptions, reporter: StatusReporter, on connection: TLSConnection,
                                         waiting: String, _ transfer: (TLSConnection, Int) throws -> T,
                                         connectAgain: () throws -> (TLSConnection, String)) throws -> T {
        var current = connection
        var breaks = 0
        while true {
            do {
                return try transfer(current, breaks)
            } catch where options.reconnectWindow > 0 && ConnectionBreak.isBreak(error) {
                breaks += 1
                guard breaks <= maxBreaks else {
                    throw BlockStreamError(.connect, "the connection broke \(breaks) times; giving up (last: \(error))")
                }
                reporter.log("the connection broke (\(error)); \(waiting) for up to \(formatSeconds(options.reconnectWindow))")
                reporter.update { $0.connected = false }
                let (next, peer) = try connectAgain()
                guard try negotiate(next, options, peer: peer, reporter: reporter) else {
                    next.abort()
                    throw BlockStreamError(.protocolError, "\(peer) came back without gnt-move/1; a broken transfer continues only with it")
                }
                current = next
            }
        }
    }

    /// Broken connections one transfer survives (each with the whole `--reconnect` window to come
    /// back); a link that keeps breaking ends the transfer rather than looping for ever.
    static let maxBreaks = 100

    /// The first connection on `listener` that authenticates within `seconds` (the listener is
    /// closed afterwards).
    static func authenticatedConnection(_ listener: TCPListener, context: TLSContext, _ options: ImportExportOptions,
                                        reporter: StatusReporter, within seconds: Double) throws -> (TLSConnection, String) {
        let acceptor = try ImportAcceptor(listener: listener, context: context, handshakeTimeout: options.handshakeTimeout, reporter: reporter)
        guard let (connection, peer) = try acceptor.accept(until: Monotonic.now() + seconds) else {
            let detail = acceptor.lastRejection.map { "; last attempt: \($0)" } ?? ""
            throw BlockStreamError(.timeout, "no authenticated connection within \(formatSeconds(seconds))\(detail)")
        }
        return (connection, peer)
    }

    static func runExport(_ options: ImportExportOptions, reporter: StatusReporter) throws {
        guard let host = options.host, let port = options.port else {
            throw BlockStreamError(.configuration, "export needs --host and --port")
        }
        let source = try BlockSource(path: options.path)
        if options.streamProtocol == .v1 && source.size == nil {
            throw BlockStreamError(.configuration, "gnt-move/1 needs a source of known size (a file or a block device), not \(source.name)")
        }
        let context = try tlsContext(options, role: .client, offerV1: options.streamProtocol != .ganeti && source.size != nil)
        let connector = TCPConnector(host: host, port: port, family: options.family, attemptTimeout: options.connectTimeout,
                                     retries: options.connectRetries, retryInterval: 1)
        let connection = try authenticatedConnection(connector, context: context, handshakeTimeout: options.handshakeTimeout, reporter: reporter)
        let v1 = try negotiate(connection, options, peer: "the importer at \(connector.peerName)", reporter: reporter)
        let limiter = options.bandwidthLimit.map { BandwidthLimiter(bytesPerSecond: $0) }
        guard v1, let size = source.size else {
            if options.precopy { throw BlockStreamError(.configuration, "--precopy needs gnt-move/1") }
            if options.resume { throw BlockStreamError(.configuration, "--resume needs gnt-move/1") }
            try GanetiStreamExporter(settings: options.stream, reporter: reporter, limiter: limiter).run(connection: connection, source: source)
            reporter.log("sent \(reporter.bytesMoved.load(ordering: .relaxed)) bytes from \(source.name)")
            return
        }
        let binding = try journalBinding(options, context: context, role: "export", size: size)
        // The importer keeps what it verified; a new connection continues from there.
        let digest = try continuingAfterBreaks(options, reporter: reporter, on: connection, waiting: "reconnecting to resume") { connection, breaks in
            try V1StreamExporter(settings: options.stream, reporter: reporter, journalPath: options.effectiveJournalPath,
                                 resume: options.resume || breaks > 0, limiter: limiter, binding: binding, abortAfter: options.abortAfter,
                                 precopy: options.precopy)
                .run(connection: connection, source: source)
        } connectAgain: {
            let next = try reconnect(connector, context: context, options, reporter: reporter, until: Monotonic.now() + options.reconnectWindow)
            return (next, "the importer at \(connector.peerName)")
        }
        reporter.update { $0.digest = digest }
        reporter.log("sent \(source.name); the importer confirmed digest \(digest)")
    }

    /// Connects again after a break, trying until `deadline` (monotonic seconds): at once, then
    /// after 50 ms, doubling to at most 1 s (the importer listens again as soon as it sees the
    /// break, which may be a moment after the exporter does).
    static func reconnect(_ connector: TCPConnector, context: TLSContext, _ options: ImportExportOptions, reporter: StatusReporter,
                          until deadline: Double) throws -> TLSConnection {
        var delay = 0.05
        while true {
            do {
                return try authenticatedOnce(connector, context: context, handshakeTimeout: options.handshakeTimeout)
            } catch {
                guard Monotonic.now() + delay < deadline else {
                    throw BlockStreamError(.connect, "the connection broke and did not come back within \(formatSeconds(options.reconnectWindow)): \(error)")
                }
                if delay >= 1 { reporter.log("reconnecting failed (\(error)); trying again") }
                usleep(UInt32(delay * 1e6))
                delay = min(delay * 2, 1)
            }
        }
    }

    /// Connects and authenticates, retrying both: a handshake that fails or times out (the
    /// importer busy with other connections, a connection cut off) is tried again like a refused
    /// connect, up to the connector's retries, 1 s apart.
    static func authenticatedConnection(_ connector: TCPConnector, context: TLSContext, handshakeTimeout: Double,
                                        reporter: StatusReporter) throws(BlockStreamError) -> TLSConnection {
        try connector.retrying(onRetry: reporter.log) { () throws -> TLSConnection in
            try authenticatedOnce(connector, context: context, handshakeTimeout: handshakeTimeout)
        }
    }

    /// One connection attempt and its TLS handshake, with the importer's verdict on our certificate.
    static func authenticatedOnce(_ connector: TCPConnector, context: TLSContext, handshakeTimeout: Double) throws -> TLSConnection {
        let connection = try TLSConnection(context: context, socket: try connector.connectOnce())
        do {
            try connection.handshake(timeout: handshakeTimeout, peerName: connector.peerName)
            try connection.awaitServerVerdict(timeout: 2, peerName: connector.peerName)
            return connection
        } catch {
            connection.abort()
            throw error
        }
    }

    static func formatSeconds(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
