@testable import BlockStream
import Foundation
import OpenSSLSupport
import TestSupport
import XCTest

/// gnt-move/1's chunk checksum: BLAKE3 checked against its published values and another
/// implementation (b3sum), and the choice between BLAKE3 and SHA-256 negotiated between real
/// daemons, including the refusals and a resume that keeps the journal's algorithm.
final class ChunkDigestTests: XCTestCase {
    /// BLAKE3's official test vectors (input: bytes 0, 1, …, 250, 0, 1, … of the given length).
    func testBLAKE3MatchesItsPublishedTestVectors() {
        let vectors: [(Int, String)] = [
            (0, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
            (1, "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"),
            (1024, "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"),
            (1025, "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"),
            (102400, "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085"),
        ]
        for (length, expected) in vectors {
            let input = (0..<length).map { UInt8($0 % 251) }
            let digest = input.withUnsafeBytes { ChunkDigestAlgorithm.blake3.digest($0) }
            XCTAssertEqual(Hex.encode(digest), expected, "BLAKE3 of \(length) bytes")
        }
    }

    /// A full chunk (the size the SIMD code paths see) against b3sum, Rust's implementation.
    func testBLAKE3OfAChunkMatchesB3sum() throws {
        let folder = TemporaryDirectory("b3sum")
        let file = folder.file("chunk")
        try TestData.writeMixed(file, size: V1Protocol.chunkSize + 12345, seed: 5)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: file))
        let ours = bytes.withUnsafeBytes { ChunkDigestAlgorithm.blake3.digest($0) }
        let theirs = try runProcess("/usr/bin/b3sum", ["--no-names", file])
        XCTAssertEqual(theirs.status, 0, theirs.stderr)
        XCTAssertEqual(Hex.encode(ours), theirs.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        XCTAssertEqual(Hex.encode(ChunkDigestAlgorithm.blake3.zeroChunk),
                       Hex.encode([UInt8](repeating: 0, count: V1Protocol.chunkSize).withUnsafeBytes { ChunkDigestAlgorithm.blake3.digest($0) }))
    }

    func testCurrentEndsChooseBLAKE3() throws {
        let (harness, source, dest) = try prepared("blake3", size: 9 << 20)
        let importer = try harness.startImporter(dest: dest)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source)
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertEqual(try harness.status("import.status").digest, try TestData.chunkedDigest(source))
        XCTAssertEqual(try harness.status("export.status").digest, try TestData.chunkedDigest(source))
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
    }

    /// An exporter that offers only SHA-256 (as one that predates the choice computes it) gets
    /// SHA-256 from a current importer, and the whole-disk digest is SHA-256's.
    func testAnExporterOfferingOnlySHA256GetsSHA256() throws {
        let (harness, source, dest) = try prepared("sha256", size: 5 << 20)
        let importer = try harness.startImporter(dest: dest)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--chunk-digest", "sha256"])
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertEqual(try harness.status("import.status").digest, try TestData.chunkedDigest(source, algorithm: "sha256"))
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
    }

    /// An importer that requires BLAKE3 refuses an exporter that offers only SHA-256, before
    /// anything is written, and says why on both sides.
    func testAnImporterRequiringAnAlgorithmNotOfferedRefuses() throws {
        let (harness, source, dest) = try prepared("refused", size: 3 << 20)
        let importer = try harness.startImporter(dest: dest, extra: ["--chunk-digest", "blake3"])
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--chunk-digest", "sha256"])
        XCTAssertEqual(exporter.status, 1)
        XCTAssertEqual(importer.wait(), 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.contains("does not offer blake3 chunk digests") && message.contains("--chunk-digest"), message)
        XCTAssertTrue(exporter.stderr.contains("the importer refused the transfer: the exporter does not offer blake3"), exporter.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest), "nothing was written")
    }

    /// A transfer stopped under SHA-256 resumes under SHA-256 although both ends now prefer
    /// BLAKE3: the journal's records are SHA-256 digests, and mixing would fail the transfer.
    func testAResumeKeepsTheJournalsAlgorithm() throws {
        let (harness, source, dest) = try prepared("resume", size: 24 << 20)
        var importer = try harness.startImporter(dest: dest, extra: ["--chunk-digest", "sha256"])
        let first = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--abort-after", "12000000"])
        XCTAssertEqual(first.status, 1)
        XCTAssertEqual(importer.wait(), 1)

        importer = try harness.startImporter(dest: dest)
        let second = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--resume"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertGreaterThan(try XCTUnwrap(try harness.status("import.status").resume_offset), 0, "the verified prefix was kept")
        XCTAssertEqual(try harness.status("import.status").digest, try TestData.chunkedDigest(source, algorithm: "sha256"))
        XCTAssertEqual(try harness.status("export.status").digest, try TestData.chunkedDigest(source, algorithm: "sha256"))
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
    }

    private func prepared(_ label: String, size: Int) throws -> (DaemonHarness, String, String) {
        let harness = DaemonHarness("digest-\(label)")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: size, seed: 31)
        return (harness, source, harness.folder.file("dest.img"))
    }
}
