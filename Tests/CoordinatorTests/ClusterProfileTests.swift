import AgentTestSupport
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// Cluster profiles (`clusters.json`): `gnt-move move alpha beta vm` and `"source": "alpha"` in
/// a `run` request reach the clusters the profiles describe, with options overriding a profile;
/// a bad profiles file or an unknown name is one clear error and nothing is moved.
final class ClusterProfileTests: XCTestCase {
    var folder: TemporaryDirectory!
    var source: AgentHarness!
    var destination: AgentHarness!

    override func setUpWithError() throws {
        let pair = try AgentPair("profiles")
        (folder, source, destination) = (pair.folder, pair.source, pair.destination)
    }

    override func tearDown() {
        source?.stop()
        destination?.stop()
    }

    /// A profiles file beside copies of the agents' certificates and passwords, named relative
    /// to it, as an admin keeps them in /etc/gnt-move.
    func profilesFile() throws -> String {
        let etc = folder.file("etc")
        try FileManager.default.createDirectory(atPath: etc, withIntermediateDirectories: true)
        var clusters: [String: JSONValue] = [:]
        for (name, agent) in [("alpha", source!), ("beta", destination!)] {
            try FileManager.default.copyItem(atPath: agent.dir + "/rapi.crt", toPath: etc + "/\(name).pem")
            try FileManager.default.copyItem(atPath: agent.dir + "/password", toPath: etc + "/\(name).password")
            clusters[name] = .object(["host": .string("127.0.0.1"), "port": .int(agent.port), "ca_file": .string("\(name).pem"),
                                      "username": .string("gnt-move"), "password_file": .string("\(name).password")])
        }
        let file = etc + "/clusters.json"
        try JSONValue.object(["clusters": .object(clusters)]).serialized.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }

    func testMoveNamesClustersByProfile() async throws {
        let image = folder.file("web1.img")
        try TestData.writeMixed(image, size: 3 << 20, seed: 7)
        try source.addInstance("web1", disks: [image])
        let digest = try TestData.sha256(image)
        let profiles = try profilesFile()
        let result = try gntMove("move", "alpha", "beta", "web1", "--clusters", profiles, "--state-dir", folder.file("state"))
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let moved = try await destination.client().instance("web1")
        XCTAssertEqual(moved["name"]?.stringValue, "web1")
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/web1.disk0"), digest)
        XCTAssertFalse(FileManager.default.fileExists(atPath: image), "the source was removed, as a move without --keep-source-instance does")
    }

    /// An option given on the command line wins over the profile: a wrong port in the profile is
    /// corrected by --dest-rapi-port, and a preflight then passes.
    func testOptionsOverrideAProfile() throws {
        let image = folder.file("web2.img")
        try TestData.writeMixed(image, size: 1 << 20, seed: 8)
        try source.addInstance("web2", disks: [image])
        let profiles = try profilesFile()
        var text = try String(contentsOfFile: profiles, encoding: .utf8)
        text = text.replacingOccurrences(of: "\"port\":\(destination.port)", with: "\"port\":1")
        try text.write(toFile: profiles, atomically: true, encoding: .utf8)
        let wrong = try gntMove("move", "alpha", "beta", "web2", "--clusters", profiles, "--state-dir", folder.file("state"), "--preflight")
        XCTAssertEqual(wrong.status, 1, wrong.stdout)
        XCTAssertTrue(wrong.stdout.contains("FAIL destination"), wrong.stdout)
        let fixed = try gntMove("move", "alpha", "beta", "web2", "--clusters", profiles, "--state-dir", folder.file("state"), "--preflight",
                                "--dest-rapi-port", String(destination.port))
        XCTAssertEqual(fixed.status, 0, fixed.stdout + fixed.stderr)
    }

    func testRunRequestNamesProfiles() throws {
        let image = folder.file("db1.img")
        try TestData.writeMixed(image, size: 2 << 20, seed: 9)
        try source.addInstance("db1", disks: [image])
        let digest = try TestData.sha256(image)
        let body = JSONValue.object(["source": .string("alpha"), "destination": .string("beta"), "clusters": .string(try profilesFile()),
                                     "moves": .array([.object(["instance": .string("db1")])]), "state_dir": .string(folder.file("state"))])
        try SchemaValidation.validate([body.serialized], schema: "run-request.schema.json")
        let result = try gntMove("run", stdin: body.serialized)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertTrue(result.stdout.contains("\"move-done\""), result.stdout)
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/db1.disk0"), digest)
    }

    /// Refusals: an unknown profile name, a malformed file, a missing file, a name that is no
    /// name. Each is one line naming the problem; no move is recorded and both clusters keep
    /// exactly the instances they had.
    func testBadProfilesAreRefusedBeforeAnythingMoves() async throws {
        let image = folder.file("keep.img")
        try TestData.writeMixed(image, size: 1 << 20, seed: 10)
        try source.addInstance("keep", disks: [image])
        let before = try TestData.sha256(image)
        let profiles = try profilesFile()
        let state = folder.file("state")

        let unknown = try gntMove("move", "gamma", "beta", "keep", "--clusters", profiles, "--state-dir", state)
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.stderr.contains("--src-ca-file is needed: 'gamma' is not a cluster profile in \(profiles)"), unknown.stderr)

        let broken = folder.write("broken.json", "{\"clusters\": {\"alpha\": {\"host\": \"127.0.0.1\"}}}")
        let malformed = try gntMove("move", "alpha", "beta", "keep", "--clusters", broken, "--state-dir", state)
        XCTAssertEqual(malformed.status, 1)
        XCTAssertTrue(malformed.stderr.contains("cluster profile 'alpha' in \(broken)") && malformed.stderr.contains("ca_file"), malformed.stderr)

        let missing = try gntMove("move", "alpha", "beta", "keep", "--clusters", folder.file("nope.json"), "--state-dir", state)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("the cluster profiles file \(folder.file("nope.json")) does not exist"), missing.stderr)

        let badName = folder.write("badname.json", "{\"clusters\": {\"../x\": {\"host\": \"h\", \"ca_file\": \"c\"}}}")
        let named = try gntMove("move", "alpha", "beta", "keep", "--clusters", badName, "--state-dir", state)
        XCTAssertEqual(named.status, 1)
        XCTAssertTrue(named.stderr.contains("cluster profile name '../x'"), named.stderr)

        let run = JSONValue.object(["source": .string("gamma"), "clusters": .string(profiles), "moves": .array([.object(["instance": .string("keep")])]),
                                    "state_dir": .string(state)])
        let refused = try gntMove("run", stdin: run.serialized)
        XCTAssertEqual(refused.status, 2)
        XCTAssertTrue(refused.stdout.contains("'source': 'gamma' is not a cluster profile in \(profiles)"), refused.stdout)

        XCTAssertFalse(FileManager.default.fileExists(atPath: state + "/moves.sqlite"), "no move was recorded")
        let sourceInstances = try await source.client().request(.GET, "/2/instances")
        let destinationInstances = try await destination.client().request(.GET, "/2/instances")
        XCTAssertEqual(sourceInstances.arrayValue?.count, 1)
        XCTAssertEqual(destinationInstances, .array([]))
        XCTAssertEqual(try TestData.sha256(image), before)
    }
}
