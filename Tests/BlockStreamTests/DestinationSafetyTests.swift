import BlockStream
import Foundation
import TestSupport
import XCTest

/// The daemons never follow a symbolic link to their disks or to the resume journal, and a
/// journal is only used with the destination it was written for.
final class DestinationSafetyTests: XCTestCase {
    /// A file someone would like the importer to overwrite.
    func victim(_ harness: DaemonHarness, _ name: String = "victim") throws -> (path: String, digest: String) {
        let path = harness.folder.file(name)
        try TestData.writeMixed(path, size: 3 << 20, seed: 77)
        return (path, try TestData.sha256(path))
    }

    func testSymlinkedDestinationIsRefusedAndItsTargetUntouched() throws {
        let harness = DaemonHarness("safety-dest-link")
        let (target, digest) = try victim(harness)
        let dest = harness.folder.file("dest.img")
        try FileManager.default.createSymbolicLink(atPath: dest, withDestinationPath: target)
        let importer = try harness.startImporter(dest: dest)
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertEqual(try harness.status("import.status").error_message,
                       "destination \(dest) is a symbolic link; refusing to follow it (give the real path of the disk)")
        XCTAssertEqual(try TestData.sha256(target), digest, "the link's target is untouched")
        XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: dest), target, "the link itself is left alone")
    }

    func testSymlinkedSourceIsRefused() throws {
        let harness = DaemonHarness("safety-source-link")
        let (target, _) = try victim(harness, "secret")
        let source = harness.folder.file("source.img")
        try FileManager.default.createSymbolicLink(atPath: source, withDestinationPath: target)
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest, timeout: 3)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source)
        XCTAssertEqual(exporter.status, 1)
        XCTAssertEqual(try harness.status("export.status").error_message,
                       "source \(source) is a symbolic link; refusing to follow it (give the real path of the disk)")
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest), "nothing was sent")
    }

    func testSymlinkAtTheJournalPathIsRefused() throws {
        let harness = DaemonHarness("safety-journal-link")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 2 << 20)
        let (target, digest) = try victim(harness)
        let journal = harness.folder.file("import.status.journal")
        try FileManager.default.createSymbolicLink(atPath: journal, withDestinationPath: target)
        let dest = harness.folder.file("dest.img")
        for resume in [false, true] {
            let importer = try harness.startImporter(dest: dest)
            let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, extra: resume ? ["--resume"] : [])
            XCTAssertEqual(exporter.status, 1)
            XCTAssertEqual(importer.wait(), 1)
            XCTAssertEqual(try harness.status("import.status").error_message,
                           "journal \(journal) is a symbolic link; refusing to follow it (remove it to start over)")
            XCTAssertTrue(exporter.stderr.contains("the importer refused the transfer: journal \(journal) is a symbolic link"), exporter.stderr)
            XCTAssertEqual(try TestData.sha256(target), digest, "the link's target is untouched")
            XCTAssertEqual(try FileManager.default.destinationOfSymbolicLink(atPath: journal), target)
            XCTAssertFalse(FileManager.default.fileExists(atPath: dest), "nothing written")
        }
    }

    /// A journal written while receiving into one file is not applied to another file that took
    /// its name (same path, another inode): the importer says so and receives the whole disk.
    func testJournalOfAnotherDestinationFileIsNotReused() throws {
        let harness = DaemonHarness("safety-journal-other")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 24 << 20, seed: 12)
        let dest = harness.folder.file("dest.img")
        var importer = try harness.startImporter(dest: dest)
        let first = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--abort-after", "12000000"])
        XCTAssertEqual(first.status, 1)
        importer.wait()
        let journal = harness.folder.file("import.status.journal")
        XCTAssertTrue(FileManager.default.fileExists(atPath: journal), "the first attempt left a journal")

        // Another file now holds the name: garbage where the journal says data is durable.
        let replacement = harness.folder.file("replacement.img")
        try TestData.writeMixed(replacement, size: 24 << 20, seed: 99)
        XCTAssertEqual(rename(replacement, dest), 0)

        importer = try harness.startImporter(dest: dest)
        let second = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--resume"])
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        let status = try harness.status("import.status")
        XCTAssertNil(status.resume_offset, "nothing was taken from the other file's journal")
        XCTAssertTrue(status.recent_output.contains { $0.contains("journal \(journal) was written for another destination (device/inode") && $0.contains("receiving the whole disk again") },
                      "\(status.recent_output)")
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source), "the data is correct")
        XCTAssertEqual(status.digest, try TestData.chunkedDigest(source))
    }
}
