import BlockStream
import Foundation
import TestSupport
import XCTest

/// gnt-move against Ganeti's own transport: socat with the exact command lines of
/// `lib/impexpd`, plus gzip/zstd and the bash magic check, on loopback with real TLS.
final class SocatInteropTests: XCTestCase {
    static let cases: [(compress: String, magic: String?)] = [
        ("none", nil), ("none", DaemonHarness.magic), ("gzip", nil), ("gzip", DaemonHarness.magic), ("zstd", DaemonHarness.magic),
    ]

    override func setUpWithError() throws {
        _ = try XCTUnwrap(which("socat"), "socat is installed by .ci/run")
    }

    func testGntMoveExporterIntoGanetiImporter() throws {
        for (compress, magic) in Self.cases {
            let harness = DaemonHarness("interop-export")
            let source = harness.folder.file("source.img")
            try TestData.writeMixed(source, size: 7_500_000)
            let destination = harness.folder.file("dest.img")
            let log = harness.folder.file("socat.log")
            let importer = try GanetiPipelines.start(GanetiPipelines.importCommand(
                key: DaemonHarness.b.key, cert: DaemonHarness.b.cert, ca: DaemonHarness.a.cert,
                compress: compress, magic: magic, destination: destination, socatLog: log))
            var port: Int?
            XCTAssertTrue(waitFor { port = GanetiPipelines.listeningPort(socatLog: log); return port != nil }, "socat did not listen")
            let exporter = try harness.runExporter(port: try XCTUnwrap(port), source: source, compress: compress, magic: magic)
            XCTAssertEqual(exporter.status, 0, "\(compress) magic=\(magic != nil): \(exporter.stderr)")
            XCTAssertEqual(importer.wait(), 0, "\(compress): \(importer.stderr)")
            XCTAssertEqual(try TestData.sha256(destination), try TestData.sha256(source), "\(compress) magic=\(magic != nil)")
        }
    }

    func testGanetiExporterIntoGntMoveImporter() throws {
        for (compress, magic) in Self.cases {
            let harness = DaemonHarness("interop-import")
            let source = harness.folder.file("source.img")
            try TestData.writeMixed(source, size: 7_500_000, seed: 2)
            let destination = harness.folder.file("dest.img")
            let importer = try harness.startImporter(dest: destination, compress: compress, magic: magic)
            let port = try harness.listenPort()
            let exporter = try GanetiPipelines.start(GanetiPipelines.exportCommand(
                source: source, host: "127.0.0.1", port: port, key: DaemonHarness.a.key, cert: DaemonHarness.a.cert,
                ca: DaemonHarness.b.cert, compress: compress, magic: magic))
            XCTAssertEqual(exporter.wait(), 0, "\(compress): \(exporter.stderr)")
            XCTAssertEqual(importer.wait(), 0, "\(compress) magic=\(magic != nil): \(importer.stderr)")
            XCTAssertEqual(try TestData.sha256(destination), try TestData.sha256(source), "\(compress) magic=\(magic != nil)")
            let status = try harness.status("import.status")
            XCTAssertEqual(status.exit_status, 0)
            XCTAssertEqual(status.connected, true)
            XCTAssertNil(status.error_message)
        }
    }

    /// Ganeti's importer fails on a magic mismatch. (Its socat still ends TLS cleanly, so the
    /// exporter cannot tell; Ganeti's master learns it from the importer, as gnt-move's agent does.)
    func testGanetiImporterRefusesWrongMagic() throws {
        let harness = DaemonHarness("interop-magic")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 3_000_000)
        let log = harness.folder.file("socat.log")
        let importer = try GanetiPipelines.start(GanetiPipelines.importCommand(
            key: DaemonHarness.b.key, cert: DaemonHarness.b.cert, ca: DaemonHarness.a.cert,
            compress: "gzip", magic: DaemonHarness.magic, destination: harness.folder.file("dest.img"), socatLog: log))
        var port: Int?
        XCTAssertTrue(waitFor { port = GanetiPipelines.listeningPort(socatLog: log); return port != nil })
        _ = try harness.runExporter(port: try XCTUnwrap(port), source: source, compress: "gzip", magic: "0000000000")
        XCTAssertNotEqual(importer.wait(), 0)
        XCTAssertTrue(importer.stderr.contains("Magic value mismatch"), importer.stderr)
    }
}
