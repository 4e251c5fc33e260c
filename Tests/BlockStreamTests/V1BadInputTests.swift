@testable import BlockStream
import Foundation
import OpenSSLSupport
import TestSupport
import XCTest

/// A hand-driven gnt-move/1 peer over real TLS sends what a correct exporter never would; the
/// importer must stop with a clear error and write nothing that was not verified.
final class V1BadInputTests: XCTestCase {
    /// Connects to the importer as exporter A, negotiating gnt-move/1.
    func connect(_ harness: DaemonHarness, port: Int) throws -> TLSConnection {
        let context = try TLSContext(TLSConfiguration(role: .client, keyPath: DaemonHarness.a.key, certificatePath: DaemonHarness.a.cert,
                                                      peerCertificatePath: DaemonHarness.b.cert, applicationProtocols: [V1Protocol.alpn]))
        let socket = try TCPConnector(host: "127.0.0.1", port: port, family: .ipv4, attemptTimeout: 5, retries: 0).connect()
        let connection = try TLSConnection(context: context, socket: socket)
        try connection.handshake(timeout: 5, peerName: "importer")
        XCTAssertEqual(connection.negotiatedProtocol, V1Protocol.alpn)
        return connection
    }

    func hello(_ connection: TLSConnection, size: Int64) throws {
        let link = V1Connection(connection, limiter: nil)
        try link.send(V1FrameHeader(type: .hello), payload: V1Control.encode(V1Hello(magic: DaemonHarness.magic, size: size, chunk_size: V1Protocol.chunkSize, resume: false)))
        _ = try link.readReply(expecting: .welcome, what: "WELCOME", peer: "importer")
    }

    func testWrongChecksumStopsTheTransfer() throws {
        let harness = DaemonHarness("v1-checksum")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest)
        let connection = try connect(harness, port: try harness.listenPort())
        try hello(connection, size: 2 << 20)
        let payload = SecureRandom.bytes(1 << 20)
        var frame = V1FrameHeader(type: .data)
        frame.length = UInt64(payload.count)
        frame.checksum = MessageAuthentication.digest(.sha256, Array(payload.reversed()))
        let link = V1Connection(connection, limiter: nil)
        try link.send(frame, payload: payload)
        XCTAssertThrowsError(try link.readReply(expecting: .final, what: "FINAL", peer: "the importer")) {
            XCTAssertTrue("\($0)".contains("corrupted frame at byte 0: checksum mismatch"), "\($0)")
        }
        connection.closeSocket()
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertEqual(try harness.status("import.status").error_message, "corrupted frame at byte 0: checksum mismatch")
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest), "the corrupt chunk was not written")
    }

    func testTruncatedFrameStopsTheTransfer() throws {
        let harness = DaemonHarness("v1-truncated")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest)
        let connection = try connect(harness, port: try harness.listenPort())
        try hello(connection, size: 2 << 20)
        var frame = V1FrameHeader(type: .data)
        frame.length = 1 << 20
        frame.payloadLength = 1 << 20
        var partial = frame.encoded
        partial.append(contentsOf: SecureRandom.bytes(100_000))
        try partial.withUnsafeBytes { try connection.write($0) }
        connection.abort()
        XCTAssertEqual(importer.wait(), 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.contains("truncated frame") || message.contains("without finishing") || message.contains("reset"), message)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
    }

    func testGarbageInsteadOfAFrame() throws {
        let harness = DaemonHarness("v1-garbage")
        let dest = harness.folder.file("dest.img")
        let importer = try harness.startImporter(dest: dest)
        let connection = try connect(harness, port: try harness.listenPort())
        try hello(connection, size: 2 << 20)
        try SecureRandom.bytes(64).withUnsafeBytes { try connection.write($0) }
        XCTAssertThrowsError(try V1Connection(connection, limiter: nil).readReply(expecting: .final, what: "FINAL", peer: "the importer")) {
            XCTAssertTrue("\($0)".contains("the importer refused the transfer: gnt-move/1: invalid frame header"), "\($0)")
        }
        connection.closeSocket()
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertTrue((try harness.status("import.status").error_message ?? "").contains("invalid frame header"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: dest))
    }
}

/// Block devices: loop devices stand in for disks.
final class V1BlockDeviceTests: XCTestCase {
    func attachLoop(_ file: String) throws -> String {
        let result = try runProcess("/sbin/losetup", ["-f", "--show", file])
        guard result.status == 0 else { throw XCTSkip("no loop devices here: \(result.stderr)") }
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    func detach(_ device: String) { _ = try? runProcess("/sbin/losetup", ["-d", device]) }

    /// A sparse source with 1 MiB of data at 4 MiB, and a loop device over a file of `fill` bytes.
    func prepare(_ label: String, sourceSize: Int64, deviceSize: Int, fill: UInt8) throws -> (DaemonHarness, String, String, String) {
        let harness = DaemonHarness(label)
        let source = harness.folder.file("source.img")
        try TestData.writeSparse(source, size: sourceSize, dataRanges: [(4 << 20, 1 << 20)])
        let backing = harness.folder.file("disk.img")
        try Data(repeating: fill, count: deviceSize).write(to: URL(fileURLWithPath: backing))
        return (harness, source, backing, try attachLoop(backing))
    }

    func testImportIntoABlockDeviceZeroesWhatTheSourceHasAsZeros() throws {
        let (harness, source, backing, device) = try prepare("v1-block", sourceSize: 32 << 20, deviceSize: 32 << 20, fill: 0xff)
        defer { detach(device) }
        let importer = try harness.startImporter(dest: device)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source)
        XCTAssertEqual(exporter.status, 0, exporter.stderr)
        XCTAssertEqual(importer.wait(), 0, importer.stderr)
        XCTAssertEqual(try TestData.sha256(backing), try TestData.sha256(source))
    }

    func testTargetIsZeroSkipsZeroRanges() throws {
        let (harness, source, backing, device) = try prepare("v1-block-zero", sourceSize: 32 << 20, deviceSize: 32 << 20, fill: 0xff)
        defer { detach(device) }
        let importer = try harness.startImporter(dest: device, extra: ["--target-is-zero"])
        XCTAssertEqual(try harness.runExporter(port: try harness.listenPort(), source: source).status, 0)
        XCTAssertEqual(importer.wait(), 0)
        // The operator's promise was false here: the 0xff bytes stay where the source has zeros.
        let data = try Data(contentsOf: URL(fileURLWithPath: backing))
        XCTAssertEqual(data[0], 0xff)
        XCTAssertEqual(data[(4 << 20)..<(5 << 20)], try Data(contentsOf: URL(fileURLWithPath: source))[(4 << 20)..<(5 << 20)])
    }

    func testDestinationSmallerThanSourceIsRefused() throws {
        let (harness, source, backing, device) = try prepare("v1-small", sourceSize: 64 << 20, deviceSize: 32 << 20, fill: 0xee)
        defer { detach(device) }
        let importer = try harness.startImporter(dest: device)
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source)
        XCTAssertEqual(exporter.status, 1)
        XCTAssertEqual(importer.wait(), 1)
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertEqual(message, "destination \(device) (33554432 bytes) is smaller than the source (67108864 bytes)")
        XCTAssertTrue(exporter.stderr.contains("is smaller than the source"), exporter.stderr)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: backing)), Data(repeating: 0xee, count: 32 << 20), "nothing written")
    }
}
