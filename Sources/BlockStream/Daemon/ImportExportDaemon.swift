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

    static func tlsContext(_ options: ImportExportOptions, role: TLSConfiguration.Role) throws -> TLSContext {
        try TLSContext(TLSConfiguration(role: role, keyPath: options.keyPath, certificatePath: options.certificatePath,
                                        peerCertificatePath: options.caPath))
    }

    static func runImport(_ options: ImportExportOptions, reporter: StatusReporter, onListening: (Int) -> Void) throws {
        let context = try tlsContext(options, role: .server)
        let sink = try BlockSink(path: options.path)
        let listener = try TCPListener(bind: options.bind, port: options.port ?? 0, family: options.family)
        reporter.log("listening on \(options.bind ?? options.family.anyAddress) port \(listener.port)")
        reporter.listening(port: listener.port)
        onListening(listener.port)

        // Keep listening after a failed handshake, as Ganeti's socat listener does ("forever"):
        // a stray connection must not end the import. Only a connection that authenticates is used.
        let deadline = Monotonic.now() + options.connectTimeout
        var lastRejection: String?
        while true {
            guard let (socket, peer) = try listener.accept(until: deadline) else {
                let detail = lastRejection.map { "; last attempt: \($0)" } ?? ""
                throw BlockStreamError(.timeout, "no authenticated connection within \(formatSeconds(options.connectTimeout))\(detail)")
            }
            let connection = try TLSConnection(context: context, socket: socket)
            do {
                try connection.handshake(timeout: max(1, min(30, deadline - Monotonic.now())), peerName: peer)
            } catch {
                lastRejection = error.message
                reporter.log("rejected connection: \(error.message)")
                // A normal close, so that the TLS alert reaches the peer before the FIN.
                connection.closeSocket()
                continue
            }
            reporter.log("connection from \(peer) authenticated (\(connection.protocolVersion), \(connection.cipherName))")
            reporter.connected(protocol: "ganeti")
            try GanetiStreamImporter(settings: options.stream, reporter: reporter).run(connection: connection, sink: sink)
            reporter.log("received \(sink.bytesWritten) bytes into \(sink.name)")
            return
        }
    }

    static func runExport(_ options: ImportExportOptions, reporter: StatusReporter) throws {
        guard let host = options.host, let port = options.port else {
            throw BlockStreamError(.configuration, "export needs --host and --port")
        }
        let context = try tlsContext(options, role: .client)
        let source = try BlockSource(path: options.path)
        let connector = TCPConnector(host: host, port: port, family: options.family, attemptTimeout: options.connectTimeout,
                                     retries: options.connectRetries, retryInterval: 1)
        let socket = try connector.connect(onRetry: reporter.log)
        let connection = try TLSConnection(context: context, socket: socket)
        do {
            try connection.handshake(timeout: options.connectTimeout, peerName: connector.peerName)
            try connection.awaitServerVerdict(timeout: 2, peerName: connector.peerName)
        } catch {
            connection.abort()
            throw error
        }
        reporter.log("connected to \(connector.peerName) (\(connection.protocolVersion), \(connection.cipherName))")
        reporter.connected(protocol: "ganeti")
        try GanetiStreamExporter(settings: options.stream, reporter: reporter).run(connection: connection, source: source)
        reporter.log("sent \(reporter.bytesMoved.load(ordering: .relaxed)) bytes from \(source.name)")
    }

    static func formatSeconds(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? "\(Int(seconds)) s" : "\(seconds) s"
    }
}
