import BlockStream
import Foundation
import OpenSSLSupport
import TestSupport
import XCTest

/// The importer's port is public (any job log shows it): connections that never authenticate,
/// idle or sending garbage, must not keep the real exporter out, and must not change its data.
final class HostileConnectionTests: XCTestCase {
    /// A plain TCP connection to the importer, from this test process.
    func rawConnection(port: Int) throws -> Int32 {
        try TCPConnector(host: "127.0.0.1", port: port, family: .ipv4, attemptTimeout: 5, retries: 0).connectOnce()
    }

    func transferPastHostileConnections(protocol name: String) throws {
        let harness = DaemonHarness("hostile-\(name)")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 6 << 20, seed: 7)
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest, timeout: 60, extra: ["--protocol", name])
        let port = try harness.listenPort()

        let idle = try rawConnection(port: port)
        defer { close(idle) }
        let garbage = try rawConnection(port: port)
        defer { close(garbage) }
        let noise = Array("GET / HTTP/1.1\r\nHost: importer\r\n\r\n".utf8) + SecureRandom.bytes(2048)
        XCTAssertEqual(noise.withUnsafeBytes { write(garbage, $0.baseAddress, $0.count) }, noise.count)
        // A second idle connection that has sent half a ClientHello-sized nothing: just open.
        let idle2 = try rawConnection(port: port)
        defer { close(idle2) }

        let started = Date()
        let exporter = try harness.runExporter(port: port, source: source, extra: ["--protocol", name])
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source), "identical data")
        XCTAssertLessThan(elapsed, ImportExportOptions.defaultHandshakeTimeout,
                          "the exporter was served at once, not after the idle connections timed out")
        let imported = try harness.status("import.status")
        XCTAssertEqual(imported.protocol, name == "v1" ? "gnt-move/1" : "ganeti")
        XCTAssertTrue(imported.recent_output.contains { $0.hasPrefix("rejected connection: TLS handshake with 127.0.0.1") },
                      "\(imported.recent_output)")
        // Once the stream is chosen the port is closed: nobody else gets in.
        XCTAssertThrowsError(try rawConnection(port: port))
    }

    func testIdleAndGarbageConnectionsDoNotStopGanetiStream() throws {
        try transferPastHostileConnections(protocol: "ganeti")
    }

    func testIdleAndGarbageConnectionsDoNotStopV1Stream() throws {
        try transferPastHostileConnections(protocol: "v1")
    }

    /// An idle connection is dropped after --handshake-timeout; without an exporter the importer
    /// gives up at --connect-timeout and names that last rejection.
    func testIdleConnectionIsDroppedAfterTheHandshakeTimeout() throws {
        let harness = DaemonHarness("hostile-idle")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest, timeout: 4, extra: ["--handshake-timeout", "1"])
        let idle = try rawConnection(port: try harness.listenPort())
        defer { close(idle) }
        // The importer closes the idle connection after 1 s: reading it sees the end.
        var poller = pollfd(fd: idle, events: Int16(POLLIN), revents: 0)
        XCTAssertEqual(poll(&poller, 1, 3000), 1, "the idle connection was not closed within the handshake timeout")
        XCTAssertEqual(importer.wait(), 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.hasPrefix("no authenticated connection within 4 s; last attempt: TLS handshake with 127.0.0.1:"), message)
        XCTAssertTrue(message.hasSuffix(" failed: no handshake within 1 s (an idle or too slow client)"), message)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest), "nothing written")
    }

    /// The exporter retries a handshake that fails: here the first listener on the port closes
    /// the connection unanswered, then the real importer takes the port over.
    func testExporterRetriesAFailedHandshake() throws {
        let harness = DaemonHarness("hostile-retry")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 3 << 20, seed: 9)
        let dest = harness.folder.file("dest.img")
        let impostor = try TCPListener(bind: "127.0.0.1", port: 0, family: .ipv4)
        let port = impostor.port
        let exporter = try BackgroundProcess(Repository.gntMove, harness.exporterArguments(port: port, source: source, extra: ["--connect-retries", "20"]))
        var accepted: (socket: Int32, peer: String)?
        XCTAssertTrue(waitFor(timeout: 10) { accepted = try? impostor.acceptReady(); return accepted != nil })
        if let accepted { close(accepted.socket) }
        impostor.close()
        let importer = try harness.startImporter(dest: dest, extra: ["--port", String(port)])
        XCTAssertEqual(exporter.wait(timeout: 60), 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertTrue(exporter.stderr.contains("connection attempt 1 to 127.0.0.1:\(port) failed: TLS handshake with 127.0.0.1:\(port) failed"), exporter.stderr)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
    }
}
