import BlockStream
import Foundation
import TestSupport
import XCTest

/// Passes that send only what differs (gnt-move/1 DIGESTS and SAME): a warm import (`--warm`)
/// receives pre-copy passes (`--precopy`) and then a final one that sends only the chunks changed
/// since; a compared import (`--compare`) continues into a destination that holds part of the disk.
/// The destination's digests are its own; the whole-disk digest still decides every pass.
final class V1ComparePassTests: XCTestCase {
    static let chunk = 1 << 20

    /// Overwrites chunk `index` of `path` with `byte` (a changed chunk), without truncating.
    func overwrite(_ path: String, chunk index: Int, with byte: UInt8) throws {
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(index * Self.chunk))
        try handle.write(contentsOf: Data(repeating: byte, count: Self.chunk))
    }

    /// A harness with a source image of `size` random bytes, and where the destination goes.
    func randomSource(_ label: String, size: Int) throws -> (DaemonHarness, source: String, dest: String) {
        let harness = DaemonHarness(label)
        let source = harness.folder.file("source.img")
        try TestData.writeRandom(source, size: size)
        return (harness, source, harness.folder.file("dest.img"))
    }

    /// A pre-copy pass is read while the source runs: an import that is not warm refuses it
    /// before writing anything, so a relay that asks the source for a pre-copy and the
    /// destination for a plain import cannot end a move with an inconsistent copy.
    func testAPrecopyPassIsRefusedByAnImportThatIsNotWarm() throws {
        let (harness, source, dest) = try randomSource("precopy-refused", size: 4 * Self.chunk)
        let importer = try harness.startImporter(dest: dest)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--precopy"])
        XCTAssertEqual(exporter.status, 1)
        XCTAssertEqual(importer.wait(), 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.contains("pre-copy pass") && message.contains("not warm (--warm)"), message)
        XCTAssertTrue(exporter.stderr.contains("the importer refused the transfer"), exporter.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest), "nothing was written")
    }

    func testAWarmImportTakesPassesAndTheFinalOneSendsOnlyWhatChanged() throws {
        let size = 40 * Self.chunk
        let (harness, source, dest) = try randomSource("warm-passes", size: size)
        let importer = try harness.startImporter(dest: dest, extra: ["--warm"])
        let port = try harness.listenPort()

        let first = try harness.runExporter(port: port, source: source, extra: ["--precopy"])
        XCTAssertEqual(first.status, 0, first.stderr)
        XCTAssertEqual(try harness.status("export.status").changed_bytes, Int64(size), "the first pass sends the whole disk")
        XCTAssertTrue(waitFor(timeout: 10) { (try? harness.status("import.status"))?.passes == 1 }, "the importer counted the first pass")
        XCTAssertNil(importer.exitStatus, "a pre-copy pass leaves the importer waiting for the next one")
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source), "the first pass copied the disk as it was")

        // The "running" source changes two chunks and zeroes a third.
        try overwrite(source, chunk: 3, with: 0x5a)
        try overwrite(source, chunk: 17, with: 0xa5)
        try overwrite(source, chunk: 30, with: 0)
        let final = try harness.runExporter(port: port, source: source)
        XCTAssertEqual(final.status, 0, final.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
        let exported = try harness.status("export.status")
        let imported = try harness.status("import.status")
        XCTAssertEqual(exported.changed_bytes, Int64(3 * Self.chunk), "only the three changed chunks were sent")
        XCTAssertLessThan(try XCTUnwrap(exported.wire_bytes), Int64(3 * Self.chunk + Self.chunk / 2), "wire bytes of the final pass")
        XCTAssertEqual(imported.passes, 2)
        XCTAssertEqual(imported.digest, try TestData.chunkedDigest(source))
        XCTAssertEqual(exported.digest, imported.digest)
    }

    func testACompareImportContinuesIntoADiskThatHoldsPartOfTheData() throws {
        let size = 24 * Self.chunk + 4096
        let (harness, source, dest) = try randomSource("compare", size: size)
        // The destination holds the first 10 chunks, one of them damaged, and nothing after.
        let head = try XCTUnwrap(FileHandle(forReadingAtPath: source)).readData(ofLength: 10 * Self.chunk)
        try head.write(to: URL(fileURLWithPath: dest))
        try overwrite(dest, chunk: 4, with: 0x11)
        let importer = try harness.startImporter(dest: dest, extra: ["--compare"])
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source)
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
        let exported = try harness.status("export.status")
        XCTAssertEqual(exported.changed_bytes, Int64(size - 9 * Self.chunk), "the nine intact chunks were not sent again")
        XCTAssertEqual(exported.digest, try TestData.chunkedDigest(source))
    }

    /// An importer that does not compare (no `--warm`, no `--compare`) gets the whole disk from
    /// the same exporter: the capability is offered, never assumed.
    func testAnImportThatDoesNotCompareReceivesEverything() throws {
        let size = 6 * Self.chunk
        let (harness, source, dest) = try randomSource("no-compare", size: size)
        try FileManager.default.copyItem(atPath: source, toPath: dest)
        let importer = try harness.startImporter(dest: dest)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source)
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertEqual(try harness.status("export.status").changed_bytes, Int64(size))
        XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
    }
}
