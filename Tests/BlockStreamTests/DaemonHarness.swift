import BlockStream
import Foundation
import TestSupport
import XCTest

/// Starts real `gnt-move import-export` processes with the test certificates of certs/.
struct DaemonHarness {
    struct Identity {
        let key: String
        let cert: String
    }

    static let certs = Repository.path("certs")
    static let a = Identity(key: certs + "/test-a.key", cert: certs + "/test-a.pem")
    static let b = Identity(key: certs + "/test-b.key", cert: certs + "/test-b.pem")
    static let expired = Identity(key: certs + "/expired.key", cert: certs + "/expired.pem")
    static let magic = "fb4ac43ab6b73df33e1c375865e788eb633799c5"

    let folder: TemporaryDirectory

    init(_ label: String) {
        signal(SIGPIPE, SIG_IGN)
        folder = TemporaryDirectory(label)
    }

    /// An importer as identity `own`, trusting `ca`, listening on an ephemeral port.
    func startImporter(own: Identity = b, ca: String = a.cert, dest: String, compress: String = "none",
                       magic: String? = DaemonHarness.magic, timeout: Double = 30, status: String = "import.status",
                       extra: [String] = []) throws -> BackgroundProcess {
        // A status file left by an earlier importer would announce its port.
        try? FileManager.default.removeItem(atPath: folder.file(status))
        var arguments = [folder.file(status), "import", "--key", own.key, "--cert", own.cert, "--ca", ca,
                         "--connect-timeout", String(timeout), "--compress", compress, "--dest", dest]
        if let magic { arguments += ["--magic", magic] }
        return try BackgroundProcess(Repository.gntMove, ["import-export"] + arguments + extra)
    }

    /// Waits for the importer's status file to carry `listen_port`.
    func listenPort(status: String = "import.status") throws -> Int {
        var port: Int?
        _ = waitFor {
            port = (try? ImportExportStatus.load(path: folder.file(status)))?.listen_port
            return port != nil
        }
        return try XCTUnwrap(port, "importer never reported listen_port")
    }

    func exporterArguments(own: Identity = a, ca: String = b.cert, port: Int, source: String?, compress: String = "none",
                           magic: String? = DaemonHarness.magic, status: String = "export.status", extra: [String] = []) -> [String] {
        var arguments = ["import-export", folder.file(status), "export", "--key", own.key, "--cert", own.cert, "--ca", ca,
                         "--host", "127.0.0.1", "--port", String(port), "--compress", compress,
                         "--connect-timeout", "5", "--connect-retries", "1"]
        if let source { arguments += ["--source", source] }
        if let magic { arguments += ["--magic", magic] }
        return arguments + extra
    }

    func runExporter(own: Identity = a, ca: String = b.cert, port: Int, source: String, compress: String = "none",
                     magic: String? = DaemonHarness.magic, extra: [String] = []) throws -> ProcessResult {
        try runProcess(Repository.gntMove, exporterArguments(own: own, ca: ca, port: port, source: source, compress: compress, magic: magic, extra: extra))
    }

    func status(_ name: String) throws -> ImportExportStatus { try ImportExportStatus.load(path: folder.file(name)) }
}
