import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// Ganeti's own `move-instance` (from Debian's ganeti-3.0 package, unpacked by scripts/setup)
/// as the third party, driving two gnt-move agents.
final class GanetiMoveInstanceTests: XCTestCase {
    let ganeti = "/usr/share/ganeti/3.0"

    func moveInstance(_ arguments: [String]) throws -> ProcessResult {
        XCTAssertTrue(FileManager.default.fileExists(atPath: ganeti + "/move-instance"), "scripts/setup installs Ganeti")
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = ganeti
        return try runProcess("/usr/bin/python3", ["-W", "ignore", ganeti + "/move-instance", "-v"] + arguments, environment: environment)
    }

    func testGanetiMoveInstanceDrivesTwoAgents() async throws {
        let folder = TemporaryDirectory("move-instance")
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        let source = try AgentHarness(cluster: "cluster-a", secret: secret, folder: folder)
        let destination = try AgentHarness(cluster: "cluster-b", secret: secret, folder: folder)
        try source.start()
        try destination.start()
        defer { source.stop(); destination.stop() }
        let one = folder.file("one.img"), two = folder.file("two.img")
        try TestData.writeSparse(one, size: 16 << 20, dataRanges: [(0, 1 << 20), (9 << 20, 2 << 20)])
        try TestData.writeMixed(two, size: 5 << 20, seed: 4)
        let digests = [try TestData.sha256(one), try TestData.sha256(two)]
        try source.addInstance("vm1", disks: [one, two], extra: ["--running", "--nic", "mac=aa:00:00:00:00:07,mode=bridged,link=br0", "--tag", "web"])

        let common = ["--src-rapi-port", String(source.port), "--dest-rapi-port", String(destination.port),
                      "--src-ca-file", source.dir + "/rapi.crt", "--dest-ca-file", destination.dir + "/rapi.crt",
                      "--src-username", "gnt-move", "--src-password-file", source.dir + "/password",
                      "--dest-username", "gnt-move", "--dest-password-file", destination.dir + "/password"]
        let result = try moveInstance(common + ["-I", "gnt-move-most-free", "--compress", "gzip", "127.0.0.1", "127.0.0.1", "vm1"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue((result.stdout + result.stderr).contains("vm1: Success"), result.stderr)
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/vm1.disk0"), digests[0])
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/vm1.disk1"), digests[1])
        let moved = try await destination.client().instance("vm1")
        XCTAssertEqual(moved["status"]?.stringValue, "running", "started, since it ran on the source")
        XCTAssertEqual(moved["nic.macs"], .array([.string("aa:00:00:00:00:07")]))
        do {
            _ = try await source.client().instance("vm1")
            XCTFail("move-instance removes the source by default")
        } catch let error as RAPIError { XCTAssertEqual(error.status, 404) }
        XCTAssertEqual(source.keyNames + destination.keyNames, [])

        // Back again, renamed and placed on a named node (Ganeti 3.0.2's move-instance always
        // removes the source and does not copy tags; later versions add --keep-source-instance).
        let back = try moveInstance(["--src-rapi-port", String(destination.port), "--dest-rapi-port", String(source.port),
                                     "--src-ca-file", destination.dir + "/rapi.crt", "--dest-ca-file", source.dir + "/rapi.crt",
                                     "--src-username", "gnt-move", "--src-password-file", destination.dir + "/password",
                                     "--dest-username", "gnt-move", "--dest-password-file", source.dir + "/password",
                                     "--dest-instance-name", "vm1-back", "--dest-primary-node", "node-cluster-a",
                                     // 3.0.2 crashes without -I unless this is given (its default is None).
                                     "--opportunistic-tries", "0",
                                     "127.0.0.1", "127.0.0.1", "vm1"])
        XCTAssertEqual(back.status, 0, back.stdout + back.stderr)
        XCTAssertEqual(try TestData.sha256(source.dir + "/disks/vm1-back.disk1"), digests[1])
        XCTAssertEqual(try TestData.sha256(source.dir + "/disks/vm1-back.disk0"), digests[0])
        let renamed = try await source.client().instance("vm1-back")
        XCTAssertEqual(renamed["name"]?.stringValue, "vm1-back")
        XCTAssertEqual(source.keyNames + destination.keyNames, [])
    }
}
