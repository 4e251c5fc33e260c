import BlockStream
import Foundation
import TestSupport
import XCTest

/// gnt-move/1 between two real daemons: negotiation, sparse and zero handling, digests.
final class V1StreamTests: XCTestCase {
    func transfer(_ harness: DaemonHarness, source: String, dest: String, compress: String = "none",
                  importerExtra: [String] = [], exporterExtra: [String] = []) throws -> (ProcessResult, BackgroundProcess) {
        let importer = try harness.startImporter(dest: dest, compress: compress, extra: importerExtra)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, compress: compress, extra: exporterExtra)
        importer.wait()
        return (exporter, importer)
    }

    func testSparseImageTravelsAsZerosAndStaysSparse() throws {
        let harness = DaemonHarness("v1-sparse")
        let source = harness.folder.file("source.img")
        let size: Int64 = 1 << 30
        try TestData.writeSparse(source, size: size, dataRanges: [(0, 3 << 20), (300 << 20, 5 << 20 + 4321), (size - (1 << 20), 1 << 20)])
        let dest = harness.folder.file("dest.img")
        let (exporter, importer) = try transfer(harness, source: source, dest: dest)
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.process.terminationStatus, 0, importer.stderr)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
        let sent = try XCTUnwrap(try harness.status("export.status").wire_bytes)
        XCTAssertLessThan(sent, 12 << 20, "only the 10 MiB of data travel, zeros take a few bytes")
        XCTAssertLessThan(TestData.allocatedBytes(dest), 16 << 20, "holes stay holes on the destination")
        XCTAssertEqual(try harness.status("import.status").protocol, "gnt-move/1")
    }

    func testZeroBlocksOfADenseFileAreNotSent() throws {
        let harness = DaemonHarness("v1-zero")
        let source = harness.folder.file("source.img")
        var data = Data(count: 64 << 20)
        data.replaceSubrange(0..<(1 << 20), with: Data(repeating: 0x42, count: 1 << 20))
        try data.write(to: URL(fileURLWithPath: source))
        XCTAssertGreaterThanOrEqual(TestData.allocatedBytes(source), 64 << 20, "the source is dense")
        let dest = harness.folder.file("dest.img")
        let (exporter, _) = try transfer(harness, source: source, dest: dest)
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
        XCTAssertLessThan(try XCTUnwrap(try harness.status("export.status").wire_bytes), 2 << 20)
        XCTAssertLessThan(TestData.allocatedBytes(dest), 4 << 20)
    }

    func testExistingDestinationDataIsOverwrittenWithZeros() throws {
        let harness = DaemonHarness("v1-punch")
        let source = harness.folder.file("source.img")
        try TestData.writeSparse(source, size: 32 << 20, dataRanges: [(8 << 20, 1 << 20)])
        let dest = harness.folder.file("dest.img")
        try Data(repeating: 0xff, count: 32 << 20).write(to: URL(fileURLWithPath: dest))
        let (exporter, _) = try transfer(harness, source: source, dest: dest)
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source), "old bytes where the source has zeros are gone")
    }

    func testDigestIsTheSameOnBothSidesAndMatchesItsDefinition() throws {
        for compress in ["none", "zstd"] {
            let harness = DaemonHarness("v1-digest")
            let source = harness.folder.file("source.img")
            try TestData.writeMixed(source, size: 9 * 1_048_576 + 777, seed: 11)
            let dest = harness.folder.file("dest.img")
            let (exporter, importer) = try transfer(harness, source: source, dest: dest, compress: compress)
            XCTAssertEqual(exporter.status, 0, exporter.stderr)
            XCTAssertEqual(importer.process.terminationStatus, 0, importer.stderr)
            let expected = try TestData.chunkedDigest(source)
            XCTAssertEqual(try harness.status("export.status").digest, expected)
            XCTAssertEqual(try harness.status("import.status").digest, expected)
            XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
        }
    }

    func testCompressionShrinksTheWire() throws {
        let harness = DaemonHarness("v1-zstd")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 16 << 20, seed: 5)
        let (exporter, _) = try transfer(harness, source: source, dest: harness.folder.file("dest.img"), compress: "zstd")
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertLessThan(try XCTUnwrap(try harness.status("export.status").wire_bytes), 14 << 20)
    }

    func testProtocolGanetiKeepsTheGanetiStream() throws {
        let harness = DaemonHarness("v1-off")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 2 << 20)
        let (exporter, importer) = try transfer(harness, source: source, dest: harness.folder.file("dest.img"),
                                                exporterExtra: ["--protocol", "ganeti"])
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.process.terminationStatus, 0)
        XCTAssertEqual(try harness.status("import.status").protocol, "ganeti")
        XCTAssertNil(try harness.status("import.status").digest)
    }

    func testProtocolV1IsRefusedByAGanetiPeer() throws {
        let harness = DaemonHarness("v1-socat")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 1 << 20)
        let log = harness.folder.file("socat.log")
        let importer = try GanetiPipelines.start(GanetiPipelines.importCommand(
            key: DaemonHarness.b.key, cert: DaemonHarness.b.cert, ca: DaemonHarness.a.cert, compress: "none",
            magic: DaemonHarness.magic, destination: harness.folder.file("dest.img"), socatLog: log))
        defer { importer.kill(); importer.wait() }
        var port: Int?
        XCTAssertTrue(waitFor { port = GanetiPipelines.listeningPort(socatLog: log); return port != nil })
        let exporter = try harness.runExporter(port: try XCTUnwrap(port), source: source, extra: ["--protocol", "v1"])
        XCTAssertEqual(exporter.status, 1)
        XCTAssertTrue(exporter.stderr.contains("does not speak gnt-move/1, which --protocol v1 requires"), exporter.stderr)
    }

    func testMemoryStaysFlat() throws {
        let harness = DaemonHarness("v1-memory")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 256 << 20, seed: 9)
        let (exporter, importer) = try transfer(harness, source: source, dest: harness.folder.file("dest.img"), compress: "zstd")
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.process.terminationStatus, 0)
        for side in ["export.status", "import.status"] {
            let rss = try XCTUnwrap(try harness.status(side).max_rss_kib)
            XCTAssertLessThan(rss, 64 * 1024, "\(side): \(rss) KiB resident")
        }
    }

    func testBandwidthLimit() throws {
        let harness = DaemonHarness("v1-bwlimit")
        let source = harness.folder.file("source.img")
        try TestData.writeRandom(source, size: 40 << 20)
        let started = Date()
        let (exporter, _) = try transfer(harness, source: source, dest: harness.folder.file("dest.img"), exporterExtra: ["--bwlimit", "4M"])
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        let wire = Double(try XCTUnwrap(try harness.status("export.status").wire_bytes))
        let rate = wire / elapsed
        XCTAssertLessThanOrEqual(rate, 4 * 1_048_576 * 1.05, "\(rate) B/s over \(elapsed) s")
        XCTAssertGreaterThanOrEqual(rate, 4 * 1_048_576 * 0.90, "\(rate) B/s over \(elapsed) s (start-up included)")
    }
}
