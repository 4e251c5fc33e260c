@testable import BlockStream
import Foundation
import OpenSSLSupport
import TestSupport
import XCTest

/// An importer never writes outside the disk it was given: crafted gnt-move/1 frames with huge
/// or overflowing offsets and lengths, a HELLO larger than --expected-size, and a Ganeti stream
/// longer than it, are all refused with one clear error, and the destination is unchanged where
/// it must be.
final class DestinationBoundsTests: XCTestCase {
    static let fill: UInt8 = 0xAB
    static let destSize = 4 << 20

    /// A destination that already holds 4 MiB of 0xAB, so that any stray write shows.
    func prefilledDestination(_ harness: DaemonHarness) throws -> String {
        let dest = harness.folder.file("dest.img")
        try Data(repeating: Self.fill, count: Self.destSize).write(to: URL(fileURLWithPath: dest))
        return dest
    }

    func assertUnchanged(_ dest: String, from start: Int = 0, file: StaticString = #filePath, line: UInt = #line) throws {
        let data = try Data(contentsOf: URL(fileURLWithPath: dest))
        XCTAssertEqual(data.count, Self.destSize, "the destination's size changed", file: file, line: line)
        XCTAssertEqual(data[start...], Data(repeating: Self.fill, count: Self.destSize - start), "bytes from \(start) on changed", file: file, line: line)
    }

    /// Sends HELLO for `size` bytes, then `frame` (with `payload`), and expects the importer to
    /// refuse with exactly `message` (`DEST` stands for the destination's path), to exit 1 (not
    /// crash) and to leave the destination alone.
    func refuse(_ label: String, size: Int64, frame: V1FrameHeader?, payload: [UInt8] = [], message template: String,
                extra: [String] = [], file: StaticString = #filePath, line: UInt = #line) throws {
        let harness = DaemonHarness("bounds-\(label)")
        let dest = try prefilledDestination(harness)
        let message = template.replacingOccurrences(of: "DEST", with: dest)
        let importer = try harness.startImporter(dest: dest, extra: extra)
        let context = try TLSContext(TLSConfiguration(role: .client, keyPath: DaemonHarness.a.key, certificatePath: DaemonHarness.a.cert,
                                                      peerCertificatePath: DaemonHarness.b.cert, applicationProtocols: [V1Protocol.alpn]))
        let socket = try TCPConnector(host: "127.0.0.1", port: try harness.listenPort(), family: .ipv4, attemptTimeout: 5, retries: 0).connect()
        let connection = try TLSConnection(context: context, socket: socket)
        try connection.handshake(timeout: 5, peerName: "importer")
        let link = V1Connection(connection, limiter: nil)
        try link.send(V1FrameHeader(type: .hello), payload: V1Control.encode(V1Hello(magic: DaemonHarness.magic, size: size, chunk_size: V1Protocol.chunkSize, resume: false)))
        var reply: (V1FrameHeader, [UInt8])?
        do {
            reply = try link.readReply(expecting: .welcome, what: "WELCOME", peer: "the importer")
        } catch {
            XCTAssertEqual("\(error)", "the importer refused the transfer: \(message)", file: file, line: line)
        }
        if reply != nil, let frame {
            try? link.send(frame, payload: payload)
            XCTAssertThrowsError(try link.readReply(expecting: .final, what: "FINAL", peer: "the importer"), file: file, line: line) {
                XCTAssertEqual("\($0)", "the importer refused the transfer: \(message)", file: file, line: line)
            }
        }
        connection.closeSocket()
        XCTAssertEqual(importer.wait(), 1, "the importer must refuse, not crash", file: file, line: line)
        XCTAssertEqual(importer.process.terminationReason, .exit, file: file, line: line)
        XCTAssertEqual(try harness.status("import.status").error_message, message, file: file, line: line)
        try assertUnchanged(dest, file: file, line: line)
    }

    func testDataFrameWithAnOffsetBeyondInt64IsRefused() throws {
        let payload = SecureRandom.bytes(1 << 20)
        var frame = V1FrameHeader(type: .data)
        frame.offset = UInt64.max - (1 << 20) + 1
        frame.length = UInt64(payload.count)
        frame.checksum = MessageAuthentication.digest(.sha256, payload)
        try refuse("huge-offset", size: 2 << 20, frame: frame, payload: payload,
                   message: "gnt-move/1: DATA frame at byte 18446744073708503040 of length 1048576 lies beyond the end of the disk (2097152 bytes)")
    }

    func testZeroFrameWhoseEndOverflowsIsRefused() throws {
        var frame = V1FrameHeader(type: .zero)
        frame.offset = UInt64(Int64.max) - 100
        frame.length = 1 << 20
        try refuse("overflow", size: 2 << 20, frame: frame,
                   message: "gnt-move/1: ZERO frame at byte 9223372036854775707 of length 1048576 lies beyond the end of the disk (2097152 bytes)")
    }

    func testZeroFrameWithAHugeLengthIsRefused() throws {
        var frame = V1FrameHeader(type: .zero)
        frame.offset = 0
        frame.length = UInt64.max
        try refuse("huge-length", size: 2 << 20, frame: frame,
                   message: "gnt-move/1: ZERO frame at byte 0 of length 18446744073709551615 lies beyond the end of the disk (2097152 bytes)")
    }

    func testDataFrameBeyondTheAnnouncedSizeIsRefused() throws {
        let payload = SecureRandom.bytes(1 << 20)
        var frame = V1FrameHeader(type: .data)
        frame.offset = 2 << 20
        frame.length = UInt64(payload.count)
        frame.checksum = MessageAuthentication.digest(.sha256, payload)
        try refuse("past-size", size: 2 << 20, frame: frame, payload: payload,
                   message: "gnt-move/1: DATA frame at byte 2097152 of length 1048576 lies beyond the end of the disk (2097152 bytes)")
    }

    func testHelloLargerThanTheExpectedSizeIsRefused() throws {
        try refuse("hello-size", size: 3 << 20, frame: nil,
                   message: "the source (3145728 bytes) is larger than the 2097152 bytes allotted to destination DEST (--expected-size); nothing was written",
                   extra: ["--expected-size", "2"])
    }

    /// Ganeti's stream has no size: the importer counts, and stops at --expected-size.
    func testGanetiStreamLongerThanTheExpectedSizeIsRefused() throws {
        let harness = DaemonHarness("bounds-ganeti")
        let source = harness.folder.file("source.img")
        try TestData.writeMixed(source, size: 3 << 20, seed: 5)
        let dest = try prefilledDestination(harness)
        let importer = try harness.startImporter(dest: dest, extra: ["--protocol", "ganeti", "--expected-size", "2"])
        let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--protocol", "ganeti"])
        XCTAssertEqual(importer.wait(), 1)
        XCTAssertEqual(importer.process.terminationReason, .exit)
        XCTAssertEqual(exporter.status, 1, "the exporter must not believe the import succeeded")
        let message = try harness.status("import.status").error_message ?? ""
        XCTAssertTrue(message.hasPrefix("the stream carries more than the 2097152 bytes allotted to destination \(dest)"), message)
        try assertUnchanged(dest, from: 2 << 20)
    }

    /// A stream that fits is received whole, even when it is shorter than the allotment.
    func testStreamsWithinTheExpectedSizeAreReceived() throws {
        for name in ["ganeti", "v1"] {
            let harness = DaemonHarness("bounds-fits-\(name)")
            let source = harness.folder.file("source.img")
            try TestData.writeMixed(source, size: 2 << 20, seed: 6)
            let dest = harness.folder.file("dest.img")
            let importer = try harness.startImporter(dest: dest, extra: ["--protocol", name, "--expected-size", "2"])
            let exporter = try harness.runExporter(port: try harness.listenPort(), source: source, extra: ["--protocol", name])
            XCTAssertEqual(exporter.status, 0, exporter.stderr)
            XCTAssertEqual(importer.wait(), 0, importer.stderr)
            XCTAssertEqual(try TestData.sha256(dest), try TestData.sha256(source))
        }
    }
}
