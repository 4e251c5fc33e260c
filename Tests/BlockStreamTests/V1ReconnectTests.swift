import BlockStream
import Foundation
import TestSupport
import XCTest

/// A gnt-move/1 transfer whose connection is cut (both sockets reset, as `ss -K` does) continues
/// on a new connection from the importer's journal, with `--reconnect` on both daemons.
final class V1ReconnectTests: XCTestCase {
    func testCutConnectionsContinueWhereTheyStopped() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ss") else { throw XCTSkip("ss (iproute2) is not installed") }
        let harness = DaemonHarness("reconnect")
        let size = 48 << 20
        let source = harness.folder.file("source.img")
        try TestData.writeRandom(source, size: size)
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest, extra: ["--reconnect", "30"])
        let port = try harness.listenPort()
        // Random data, uncompressed: about 6 s on the wire at 8 MB/s.
        let exporter = try BackgroundProcess(Repository.gntMove, harness.exporterArguments(
            port: port, source: source, extra: ["--reconnect", "30", "--bwlimit", "8M"]))
        // Cut twice while data flows (about 6 s at 8 MB/s).
        var cuts = 0
        for delay in [2.0, 1.5] {
            Thread.sleep(forTimeInterval: delay)
            XCTAssertTrue(waitFor(timeout: 10) { ((try? resetTCPConnections(port: port)) ?? 0) > 0 }, "no established connection to cut")
            cuts += 1
        }
        XCTAssertEqual(exporter.wait(), 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertEqual(cuts, 2)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
        let imported = try harness.status("import.status")
        XCTAssertEqual(imported.digest, try TestData.chunkedDigest(source))
        XCTAssertGreaterThan(try XCTUnwrap(imported.resume_offset), 0, "the second connection continued past the start")
        XCTAssertEqual(importer.stderr.components(separatedBy: "the connection broke").count - 1, 2, importer.stderr)
        XCTAssertEqual(exporter.stderr.components(separatedBy: "reconnecting to resume").count - 1, 2, exporter.stderr)
        // The disk did not start over: at most what was in flight at each cut crossed twice.
        let wire = try XCTUnwrap(try harness.status("export.status").wire_bytes)
        XCTAssertLessThan(wire, Int64(size) + Int64(2 * 12 << 20), "wire bytes \(wire) for a \(size)-byte disk")
    }

    /// A verdict is not a break: a chunk the importer refuses ends the transfer, reconnection or
    /// not (here: a destination smaller than the source).
    func testAVerdictEndsTheTransferEvenWithReconnect() throws {
        let harness = DaemonHarness("reconnect-verdict")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 4 << 20)
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest, extra: ["--reconnect", "30", "--expected-size", "2"])
        let started = Date()
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--reconnect", "30"])
        XCTAssertEqual(exporter.status, 1)
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertLessThan(Date().timeIntervalSince(started), 20, "no reconnection after a refusal")
        XCTAssertFalse(exporter.stderr.contains("reconnecting"), exporter.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest), "nothing unverified reached the disk")
    }
}
