@testable import BlockStream
import Foundation
import TestSupport
import XCTest

/// gnt-move to gnt-move over real TLS on loopback, and the status file.
final class TransferTests: XCTestCase {
    /// The Ganeti stream between two gnt-move daemons (`--protocol ganeti`).
    func testEveryCompressionRoundTrips() throws {
        for compress in ["none", "gzip", "gzip-fast", "gzip-slow", "zstd"] {
            let harness = DaemonHarness("roundtrip")
            let source = harness.folder.file("source.img")
            try TestData.writeMixed(source, size: 5 * 1_048_576 + 12345, seed: 7)
            let dest = harness.folder.file("dest.img")
            // The allotment is the source's size rounded up to whole MiB, as agents pass it: an
            // importer never writes past --expected-size.
            let importer = try harness.startImporter(dest: dest, compress: compress, extra: ["--expected-size", "6"])
            let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, compress: compress,
                                                   extra: ["--protocol", "ganeti"])
            XCTAssertEqual(exporter.status, 0, "\(compress): \(exporter.stderr)")
            XCTAssertEqual(importer.wait(), 0, "\(compress): \(importer.stderr)")
            XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source), compress)
            XCTAssertTrue(exporter.stderr.contains("importer confirmed the end of the stream"), exporter.stderr)
        }
    }

    func testEmptySourceAndStdoutDestination() throws {
        let harness = DaemonHarness("empty")
        let empty = harness.folder.write("empty.img", "")
        let importer = try BackgroundProcess(Repository.gntMove, [
            "import-export", harness.folder.file("import.status"), "import", "--key", DaemonHarness.b.key,
            "--cert", DaemonHarness.b.cert, "--ca", DaemonHarness.a.cert, "--magic", DaemonHarness.magic, "--compress", "gzip"])
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: empty, compress: "gzip")
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertEqual(importer.stdout, "")
    }

    func testStatusFileFollowsGanetiFormat() throws {
        let harness = DaemonHarness("status")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 3 * 1_048_576)
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest, extra: ["--expected-size", "3"])
        let port = try harness.listenPort()
        let listening = try harness.status("import.status")
        XCTAssertEqual(listening.listen_port, port)
        XCTAssertNil(listening.connected)
        XCTAssertNil(listening.exit_status)
        XCTAssertEqual(try harness.runExporter(port: port, source: source).status, 0)
        XCTAssertEqual(importer.wait(), 0)
        let final = try harness.status("import.status")
        XCTAssertEqual(final.exit_status, 0)
        XCTAssertEqual(final.connected, true)
        XCTAssertEqual(final.progress_mbytes, 3)
        XCTAssertEqual(final.progress_percent, 100)
        XCTAssertNil(final.error_message)
        XCTAssertGreaterThanOrEqual(final.mtime, final.ctime)
        XCTAssertFalse(final.recent_output.isEmpty)
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: harness.folder.file("import.status")))) as? [String: Any]
        XCTAssertNil(raw?["error_message"], "absent keys are omitted, as Ganeti does")
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: harness.folder.file("import.status"))[.posixPermissions] as? Int, 0o400)
        XCTAssertFalse(FileManager.default.fileExists(atPath: harness.folder.file("import.status.tmp")))
    }

    func testGanetiThroughputVector() {
        XCTAssertEqual(calculateThroughput([(5.0, 7.0), (10.0, 100.0), (16.0, 181.0)]) ?? 0, 15.818, accuracy: 0.001)
        XCTAssertNil(calculateThroughput([(5.0, 7.0)]))
    }

    /// Chunks compressed independently still form one stream that the standard tools read.
    func testParallelCompressedStreamIsReadableByStandardTools() throws {
        let folder = TemporaryDirectory("codec")
        let input = folder.file("input")
        try TestData.writeMixed(input, size: 3 * 1_048_576 + 999)
        let data = try Data(contentsOf: URL(fileURLWithPath: input))
        for (method, tool) in [(CompressionMethod.gzip, ["gzip", "-d", "-c"]), (.zstd, ["zstd", "-d", "-c"])] {
            var stream = Data()
            let compressor = try XCTUnwrap(try method.makeCompressor())
            var offset = 0
            while offset < data.count {
                let piece = data[offset..<min(data.count, offset + 1_048_576)]
                let output = ChunkBuffer(capacity: piece.count + CompressionMethod.worstCaseExpansion(piece.count))
                try piece.withUnsafeBytes { try compressor.compress($0, into: output) }
                stream.append(Data(output.bytes))
                offset += piece.count
            }
            let compressed = folder.file("stream-\(method.rawValue)")
            try stream.write(to: URL(fileURLWithPath: compressed))
            let binary = try XCTUnwrap(which(tool[0]))
            let result = try BackgroundProcess(binary, Array(tool.dropFirst()), stdinFile: compressed)
            XCTAssertEqual(result.wait(), 0, method.rawValue)
            XCTAssertEqual(try TestData.sha256(result.stdoutPath), try TestData.sha256(input), method.rawValue)
        }
    }
}
