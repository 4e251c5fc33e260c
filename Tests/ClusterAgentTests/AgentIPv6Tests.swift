import AgentTestSupport
import Foundation
import MoveTrust
import TestSupport
import XCTest

/// Two agents on IPv6 (Ganeti supports IPv6 clusters): the RAPI, the signed disk info and both
/// import/export daemons use `::1`, and `gnt-move move` moves an instance between them.
final class AgentIPv6Tests: XCTestCase {
    func testMoveBetweenAgentsOnIPv6Loopback() async throws {
        try XCTSkipUnless(Self.loopbackIPv6Works, "::1 cannot be bound on this machine")
        let folder = TemporaryDirectory("ipv6")
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        let source = try AgentHarness(cluster: "cluster-a", secret: secret, folder: folder, dataAddress: "::1", bind: "::1")
        let destination = try AgentHarness(cluster: "cluster-b", secret: secret, folder: folder, dataAddress: "::1", bind: "::1")
        try source.start()
        try destination.start()
        defer { source.stop(); destination.stop() }
        let image = folder.file("v6.img")
        try TestData.writeMixed(image, size: 5 << 20, seed: 6)
        let digest = try TestData.sha256(image)
        try source.addInstance("v6", disks: [image])

        let result = try gntMove(arguments: source.moveArguments(to: destination, ["v6"], stateDir: folder.file("state")) + ["--compress", "zstd", "--json"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/v6.disk0"), digest, "the data arrived identical")
        let moved = try await destination.client().instance("v6")
        XCTAssertEqual(moved["name"]?.stringValue, "v6")
        let left = try await source.client().request(.GET, "/2/instances")
        XCTAssertEqual(left.arrayValue?.count, 0, "the source instance was removed")
        XCTAssertEqual(source.keyNames + destination.keyNames, [], "no per-move key is left")
    }

    /// Whether a socket can be bound to `::1` here (a container may have IPv6 disabled).
    static var loopbackIPv6Works: Bool {
        let fd = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in6()
        address.sin6_family = sa_family_t(AF_INET6)
        address.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        } == 0
    }
}
