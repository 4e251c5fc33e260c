import BlockStream
import Foundation
import TestSupport
import XCTest

/// Each bad input or broken peer fails with a clear error in the status file, and nothing
/// reaches the destination before authentication and the magic check.
final class TransferFailureTests: XCTestCase {
    func source(_ harness: DaemonHarness, size: Int = 4_000_000) throws -> String {
        let path = harness.folder.file("source.img")
        try TestData.writeMixed(path, size: size)
        return path
    }

    func assertNothingWritten(_ path: String, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertFalse(FileManager.default.fileExists(atPath: path), "destination was created", file: file, line: line)
    }

    func testWrongCAOnImporter() throws {
        let harness = DaemonHarness("wrong-ca-import")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(ca: DaemonHarness.b.cert, dest: dest, timeout: 3)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: try source(harness))
        XCTAssertEqual(exporter.status, 1)
        XCTAssertEqual(importer.wait(), 1)
        let imported = try harness.status("import.status")
        XCTAssertEqual(imported.exit_status, 1)
        XCTAssertTrue(imported.error_message?.contains("no authenticated connection within 3 s; last attempt: TLS handshake") == true, "\(imported.error_message ?? "")")
        XCTAssertTrue(imported.error_message?.contains("peer certificate rejected") == true, "\(imported.error_message ?? "")")
        XCTAssertNotNil(try harness.status("export.status").error_message)
        XCTAssertTrue(exporter.stderr.contains("TLS handshake with 127.0.0.1"), exporter.stderr)
        assertNothingWritten(dest)
    }

    func testWrongCAOnExporter() throws {
        let harness = DaemonHarness("wrong-ca-export")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest, timeout: 3)
        let exporter = try harness.runExporter(ca: DaemonHarness.a.cert, port: try harness.listenPort(), source: try source(harness))
        XCTAssertEqual(exporter.status, 1)
        let exported = try harness.status("export.status")
        XCTAssertTrue(exported.error_message?.contains("peer certificate rejected") == true, "\(exported.error_message ?? "")")
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertTrue((try harness.status("import.status")).error_message?.contains("no authenticated connection") == true)
        assertNothingWritten(dest)
    }

    func testMagicMismatch() throws {
        let harness = DaemonHarness("magic")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: try source(harness), magic: "24A02A81-2264-4B51-A882-A2AB9D85B420")
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertTrue((try harness.status("import.status")).error_message?.hasPrefix("Magic value mismatch") == true)
        XCTAssertEqual(exporter.status, 1, "the exporter must learn that the importer refused the stream")
        XCTAssertNotNil(try harness.status("export.status").error_message)
        assertNothingWritten(dest)
    }

    func testMissingMagicOnExporter() throws {
        let harness = DaemonHarness("magic-missing")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: try source(harness), magic: nil)
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertEqual(exporter.status, 1)
        assertNothingWritten(dest)
    }

    func testExpiredPeerCertificate() throws {
        let harness = DaemonHarness("expired")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(ca: DaemonHarness.expired.cert, dest: dest, timeout: 3)
        let exporter = try harness.runExporter(own: DaemonHarness.expired, port: try harness.listenPort(), source: try source(harness))
        XCTAssertEqual(exporter.status, 1)
        XCTAssertEqual(importer.wait(), 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.contains("certificate has expired"), message)
        assertNothingWritten(dest)
    }

    func testNobodyConnects() throws {
        let harness = DaemonHarness("timeout")
        let dest = harness.folder.file("dest.img")
        let started = Date()
        let importer = try harness.startImporter(dest: dest, timeout: 2)
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(started), 2)
        let status = try harness.status("import.status")
        XCTAssertEqual(status.error_message, "no authenticated connection within 2 s")
        XCTAssertNotNil(status.listen_port)
        XCTAssertTrue(importer.stderr.contains("no authenticated connection within 2 s"))
        assertNothingWritten(dest)
    }

    func testExporterGivesUpWhenNobodyListens() throws {
        let harness = DaemonHarness("refused")
        let listener = try TCPListener(bind: "127.0.0.1", port: 0, family: .ipv4)
        let port = listener.port
        _ = consume listener
        let result = try harness.runExporter(port: port, source: try source(harness), extra: ["--connect-retries", "2"])
        XCTAssertEqual(result.status, 1)
        let message = try harness.status("export.status").error_message ?? ""
        XCTAssertEqual(message, "cannot connect to 127.0.0.1:\(port) after 3 attempt(s): Connection refused")
    }

    func testCompressionMismatchGzipIntoNone() throws {
        let harness = DaemonHarness("mismatch-a")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest, compress: "none")
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: try source(harness), compress: "gzip",
                                               extra: ["--protocol", "ganeti"])
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertEqual(exporter.status, 1)
        XCTAssertTrue((try harness.status("import.status")).error_message?.contains("Magic value mismatch") == true)
        assertNothingWritten(dest)
    }

    func testCompressionMismatchNoneIntoGzip() throws {
        let harness = DaemonHarness("mismatch-b")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest, compress: "gzip")
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: try source(harness), compress: "none",
                                               extra: ["--protocol", "ganeti"])
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertEqual(exporter.status, 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.contains("not valid gzip"), message)
        assertNothingWritten(dest)
    }

    /// gnt-move/1 frames say how they are compressed, so differing --compress values cannot
    /// corrupt a gnt-move to gnt-move transfer.
    func testCompressionMismatchCannotHappenWithV1() throws {
        let harness = DaemonHarness("mismatch-v1")
        let dest = harness.folder.file("dest.img")
        let source = try source(harness)
        let importer = try harness.startImporter(dest: dest, compress: "none")
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, compress: "zstd")
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
    }

    func testExporterKilledMidStream() throws {
        let harness = DaemonHarness("kill-exporter")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest)
        let exporter = try BackgroundProcess(Repository.gntMove, harness.exporterArguments(port: try harness.listenPort(), source: nil), stdinPipe: true)
        try exporter.writeStdin(Data(repeating: 0x5a, count: 3 << 20))
        XCTAssertTrue(waitFor { ((try? FileManager.default.attributesOfItem(atPath: dest)[.size] as? Int) ?? 0) > 0 }, "no data arrived")
        exporter.kill(SIGKILL)
        exporter.wait()
        XCTAssertEqual(importer.wait(), 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.contains("without finishing the stream") || message.contains("reset"), message)
    }

    func testImporterKilledMidStream() throws {
        let harness = DaemonHarness("kill-importer")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest)
        let exporter = try BackgroundProcess(Repository.gntMove, harness.exporterArguments(port: try harness.listenPort(), source: nil), stdinPipe: true)
        try exporter.writeStdin(Data(repeating: 0x5a, count: 3 << 20))
        XCTAssertTrue(waitFor { ((try? FileManager.default.attributesOfItem(atPath: dest)[.size] as? Int) ?? 0) > 0 }, "no data arrived")
        importer.kill(SIGKILL)
        importer.wait()
        for _ in 0..<64 { try? exporter.writeStdin(Data(repeating: 0xa5, count: 1 << 20)) }
        try? exporter.closeStdin()
        XCTAssertEqual(exporter.wait(), 1)
        let message = try harness.status("export.status").error_message ?? ""
        XCTAssertTrue(message.contains("reset") || message.contains("without confirming") || message.contains("Broken pipe"), message)
    }

    func testFullDestination() throws {
        let harness = DaemonHarness("full")
        let importer = try harness.startImporter(dest: "/dev/full")
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: try source(harness))
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertEqual(exporter.status, 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.hasPrefix("destination /dev/full is full: No space left on device"), message)
    }

    func testBadOptionsAreRefused() throws {
        let harness = DaemonHarness("options")
        let badMagic = try runProcess(Repository.gntMove, harness.exporterArguments(port: 1, source: "/etc/hostname", magic: "bad magic!"))
        XCTAssertEqual(badMagic.status, 1)
        XCTAssertTrue(badMagic.stderr.contains("invalid magic 'bad magic!'"), badMagic.stderr)
        let badCompression = try runProcess(Repository.gntMove, harness.exporterArguments(port: 1, source: "/etc/hostname", compress: "lzop"))
        XCTAssertNotEqual(badCompression.status, 0)
        XCTAssertTrue(badCompression.stderr.contains("The value 'lzop' is invalid for '--compress <compress>'. Please provide one of 'none', 'gzip', 'gzip-fast', 'gzip-slow' or 'zstd'."),
                      badCompression.stderr)
        let missingKey = try runProcess(Repository.gntMove, ["import-export", harness.folder.file("s"), "import", "--key", "/nonexistent",
                                                             "--cert", DaemonHarness.b.cert, "--ca", DaemonHarness.a.cert])
        XCTAssertEqual(missingKey.status, 1)
        XCTAssertTrue(missingKey.stderr.contains("cannot load key file /nonexistent"), missingKey.stderr)
        XCTAssertEqual(try ImportExportStatus.load(path: harness.folder.file("s")).exit_status, 1)
    }
}
