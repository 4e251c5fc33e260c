import BlockStream
import Foundation
import TestSupport
import XCTest

/// Resuming gnt-move/1 transfers: after a stop, after SIGKILL of either side, and the journal's
/// refusals.
final class V1ResumeTests: XCTestCase {
    func testResumeAfterAStopGivesTheUninterruptedResult() throws {
        let harness = DaemonHarness("resume")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 48 << 20, seed: 21)
        let dest = harness.folder.file("dest.img")
        var importer = try harness.startImporter(dest: dest, compress: "zstd")
        let first = try harness.runExporter(port: try harness.listenPort(), source: source, compress: "zstd", extra: ["--abort-after", "30000000"])
        XCTAssertEqual(first.status, 1)
        XCTAssertEqual(importer.wait(), 1)

        importer = try harness.startImporter(dest: dest, compress: "zstd")
        let second = try harness.runExporter(port: try harness.listenPort(), source: source, compress: "zstd", extra: ["--resume"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        let resumedAt = try XCTUnwrap(try harness.status("import.status").resume_offset)
        XCTAssertGreaterThan(resumedAt, 16 << 20, "the verified prefix was kept")
        XCTAssertEqual(try harness.status("export.status").resume_offset, resumedAt)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
        XCTAssertEqual(try harness.status("import.status").digest, try TestData.chunkedDigest(source))
        XCTAssertLessThan(try XCTUnwrap(try harness.status("export.status").wire_bytes), Int64(48 << 20) - resumedAt + (4 << 20))
    }

    func testResumeWithoutJournalIsRefused() throws {
        let harness = DaemonHarness("resume-none")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 2 << 20)
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--resume"])
        XCTAssertEqual(exporter.status, 1)
        XCTAssertEqual(importer.wait(), 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.hasPrefix("--resume was asked, but there is no journal"), message)
        XCTAssertTrue(exporter.stderr.contains("the importer refused the transfer: --resume was asked, but there is no journal"), exporter.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
    }

    func testJournalOfAnotherTransferIsRefused() throws {
        let harness = DaemonHarness("resume-other")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 24 << 20)
        let dest = harness.folder.file("dest.img")
        var importer = try harness.startImporter(dest: dest)
        _ = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--abort-after", "10000000"])
        importer.wait()
        let before = try TestData.sha256(dest)

        let otherMagic = "J9plh4nFo2"
        importer = try harness.startImporter(dest: dest, magic: otherMagic)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, magic: otherMagic, extra: ["--resume"])
        XCTAssertEqual(exporter.status, 1)
        XCTAssertEqual(importer.wait(), 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.contains("belongs to another transfer (magic differ)"), message)
        XCTAssertEqual(try TestData.sha256(dest), before, "nothing written")

        importer = try harness.startImporter(own: DaemonHarness.a, ca: DaemonHarness.b.cert, dest: dest)
        let swapped = try harness.runExporter(own: DaemonHarness.b, ca: DaemonHarness.a.cert, port: try harness.listenPort(), source: source, extra: ["--resume"])
        XCTAssertEqual(swapped.status, 1)
        importer.wait()
        XCTAssertTrue((try harness.status("import.status").error_message ?? "").contains("certificates differ"))
    }

    /// Kills the exporter or the importer with SIGKILL at random points, at least 20 times
    /// during one transfer, resuming each time; the result equals an uninterrupted transfer.
    func testKillAndResumeLoop() throws {
        let harness = DaemonHarness("kill-loop")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 96 << 20, seed: 33)
        let dest = harness.folder.file("dest.img")
        let journal = harness.folder.file("import.status.journal")
        var generator = SplitMix64(seed: UInt64(Date().timeIntervalSince1970))
        var kills = 0
        var finished = false
        var attempts = 0
        while !finished && attempts < 200 {
            attempts += 1
            let importer = try harness.startImporter(dest: dest, compress: "zstd")
            let port = try harness.listenPort()
            var extra = ["--bwlimit", "6M"]
            if FileManager.default.fileExists(atPath: journal) { extra.append("--resume") }
            let exporter = try BackgroundProcess(Repository.gntMove, harness.exporterArguments(port: port, source: source, compress: "zstd", extra: extra))
            if kills < 20 {
                usleep(useconds_t(100_000 + generator.next() % 400_000))
                if exporter.process.isRunning && importer.process.isRunning {
                    (generator.next() % 2 == 0 ? exporter : importer).kill(SIGKILL)
                    kills += 1
                }
            }
            let exported = exporter.wait(timeout: 60)
            let imported = importer.wait(timeout: 60)
            finished = exported == 0 && imported == 0
        }
        XCTAssertTrue(finished, "the transfer never completed")
        XCTAssertGreaterThanOrEqual(kills, 20)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
        XCTAssertEqual(try harness.status("export.status").digest, try TestData.chunkedDigest(source))
    }
}
