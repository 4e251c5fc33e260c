import AgentTestSupport
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// `--preflight` shows the plan before its checks and changes nothing; `run`/`batch` with
/// `"preflight": true` do the same; `--bridge-map`/`--storage-map` change where NICs and disks
/// land, and malformed maps are usage errors. Between two real agents.
final class PreflightPlanTests: XCTestCase {
    var folder: TemporaryDirectory!
    var source: AgentHarness!
    var destination: AgentHarness!
    var stateDir: String { folder.file("state") }

    override func setUpWithError() throws {
        let pair = try AgentPair("preflight")
        (folder, source, destination) = (pair.folder, pair.source, pair.destination)
        // web1: two disks (4 and 2 MiB), two NICs on br0 and br1, running.
        try TestData.writeMixed(folder.file("web1-a.img"), size: 4 << 20, seed: 11)
        try TestData.writeMixed(folder.file("web1-b.img"), size: 2 << 20, seed: 12)
        try source.addInstance("web1", disks: [folder.file("web1-a.img"), folder.file("web1-b.img")],
                               extra: ["--running", "--nic", "mac=aa:00:00:00:00:11,mode=bridged,link=br0",
                                       "--nic", "mac=aa:00:00:00:00:12,mode=bridged,link=br1"])
    }

    override func tearDown() {
        source?.stop()
        destination?.stop()
    }

    func arguments(_ instance: String, _ extra: [String]) -> [String] {
        source.moveArguments(to: destination, [instance], stateDir: stateDir) + extra
    }

    func snapshot() async throws -> SystemSnapshot { try await SystemSnapshot.take([source, destination], folder: folder) }

    func lines(_ output: String) -> [String] { output.split(separator: "\n").map(String.init) }

    func events(_ output: String) throws -> [JSONValue] { try lines(output).map { try JSONValue(parsing: $0) } }

    /// Nothing changed on either cluster and no per-move key is left.
    func assertUnchanged(_ before: SystemSnapshot, _ label: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        XCTAssertTrue(waitFor(timeout: 30) { self.source.keyNames.isEmpty && self.destination.keyNames.isEmpty },
                      "\(label): keys left: \(source.keyNames + destination.keyNames)", file: file, line: line)
        let after = try await snapshot()
        after.assertSame(as: before, label, file: file, line: line)
        XCTAssertEqual(after.instances.keys.filter { $0.hasPrefix("cluster-b/") }.sorted(), before.instances.keys.filter { $0.hasPrefix("cluster-b/") }.sorted(),
                       "\(label): nothing created on the destination", file: file, line: line)
    }

    func testPlanListsEveryDiskAndItsFateThenTheChecksAndChangesNothing() async throws {
        let before = try await snapshot()
        let result = try gntMove(arguments: arguments("web1", ["--preflight", "--json", "--compress", "zstd", "--bridge-map", "br0=br9"]))
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        try SchemaValidation.validate(lines(result.stdout), schema: "run-event.schema.json")
        let all = try events(result.stdout)
        let plan = try XCTUnwrap(all.first, result.stdout)
        XCTAssertEqual(plan["event"]?.stringValue, "preflight-plan", "the plan comes before the checks")
        XCTAssertEqual(plan["instance"]?.stringValue, "web1")
        XCTAssertEqual(plan["destination_instance"]?.stringValue, "web1")
        XCTAssertEqual(plan["destination_cluster"]?.stringValue, "cluster-b")
        let disks = try XCTUnwrap(plan["disks"]?.arrayValue)
        XCTAssertEqual(disks.map { $0["size_mib"]?.integerValue }, [4, 2])
        XCTAssertEqual(disks.map { $0["template"]?.stringValue }, ["file", "file"])
        XCTAssertEqual(disks.map { $0["vg"] }, [.null, .null], "no volume group mapped: the destination's default storage")
        XCTAssertEqual(plan["nics"]?.arrayValue?.map { $0["destination_link"]?.stringValue }, ["br9", "br1"], "br0 mapped, br1 kept")
        XCTAssertEqual(plan["compress"]?.stringValue, "zstd")
        XCTAssertEqual(plan["stream"]?.stringValue, "gnt-move/1", "both agents advertise gnt-move-stream-v1")
        XCTAssertEqual(plan["destination_node"], .null)
        XCTAssertEqual(plan["iallocator"]?.stringValue, "gnt-move-most-free", "the destination's default allocator chooses")
        XCTAssertEqual(plan["source_stop"]?.stringValue, "always")
        XCTAssertEqual(plan["start"]?.boolValue, true, "it runs on the source")
        XCTAssertEqual(plan["source_instance"]?.stringValue, "removed")
        let checks = all.dropFirst()
        XCTAssertTrue(checks.allSatisfy { $0["event"]?.stringValue == "preflight" && $0["passed"]?.boolValue == true }, result.stdout)
        let names = checks.compactMap { $0["check"]?.stringValue }
        for expected in ["instance on the source", "compression", "hypervisor on the destination", "storage and bridge maps",
                         "secret, name and space (destination dry run)"] {
            XCTAssertTrue(names.contains(expected), "\(expected) in \(names)")
        }
        XCTAssertFalse(names.contains("source name resolvable"), "only a Ganeti destination resolves the source's name")
        try await assertUnchanged(before, "preflight --json")

        // The readable block: a node given, the source kept, left stopped.
        let human = try gntMove(arguments: arguments("web1", ["--preflight", "--dest-primary-node", "node-cluster-b", "--keep-source-instance", "--no-start"]))
        XCTAssertEqual(human.status, 0, human.stdout + human.stderr)
        let text = human.stdout
        XCTAssertTrue(text.hasPrefix("web1: plan\n"), text)
        for expected in ["disk 0", "4 MiB, template file, the destination's default storage", "disk 1", "2 MiB",
                         "link br0 (unchanged)", "compression", "none", "gnt-move/1 (both clusters advertise gnt-move-stream-v1)",
                         "node-cluster-b", "always: stopped before its disks are read", "left stopped", "kept, stopped (--keep-source-instance)",
                         "web1: ok   secret, name and space (destination dry run)"] {
            XCTAssertTrue(text.contains(expected), "'\(expected)' in:\n\(text)")
        }
        let planEnd = try XCTUnwrap(text.range(of: "source instance"))
        let firstCheck = try XCTUnwrap(text.range(of: "web1: ok  "))
        XCTAssertLessThan(planEnd.lowerBound, firstCheck.lowerBound, "the plan before the checks")
        try await assertUnchanged(before, "preflight")
    }

    func testRunWithPreflightEmitsPlanAndChecksAndCreatesNothing() async throws {
        let batch = folder.write("batch.json", JSONValue.object([
            "source": MoveEnd(source).json, "destination": MoveEnd(destination).json, "state_dir": .string(stateDir), "preflight": .bool(true),
            "moves": .array([.object(["instance": .string("ghost")])]),
        ]).serialized)
        let before = try await snapshot()
        XCTAssertEqual(before.instances.keys.filter { $0.hasPrefix("cluster-b/") }, [], "an empty destination")
        let request: JSONValue = .object([
            "source": MoveEnd(source).json, "destination": MoveEnd(destination).json, "state_dir": .string(stateDir), "preflight": .bool(true),
            "moves": .array([.object(["instance": .string("web1"), "bridge_map": .object(["br1": .string("br7")]), "warm": .bool(true)])]),
        ])
        try SchemaValidation.validate([request.serialized], schema: "run-request.schema.json")
        let result = try gntMove("run", stdin: request.serialized)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        try SchemaValidation.validate(lines(result.stdout), schema: "run-event.schema.json")
        let all = try events(result.stdout)
        XCTAssertEqual(all.first?["event"]?.stringValue, "preflight-plan", result.stdout)
        XCTAssertEqual(all.first?["source_stop"]?.stringValue, "warm")
        XCTAssertEqual(all.first?["nics"]?.arrayValue?.map { $0["destination_link"]?.stringValue }, ["br0", "br7"])
        XCTAssertEqual(all.dropFirst().map { $0["event"]?.stringValue }, Array(repeating: "preflight", count: all.count - 1))
        XCTAssertTrue(all.contains { $0["check"]?.stringValue == "warm move" && $0["passed"]?.boolValue == true }, result.stdout)
        XCTAssertFalse(all.contains { ["move-started", "move-done", "step"].contains($0["event"]?.stringValue ?? "") }, "nothing moved")
        try await assertUnchanged(before, "run preflight")

        // batch: the readable block; a failing check fails it.
        let failed = try gntMove("batch", batch)
        XCTAssertEqual(failed.status, 1, failed.stdout + failed.stderr)
        XCTAssertTrue(failed.stdout.contains("ghost: FAIL instance on the source"), failed.stdout)
        try await assertUnchanged(before, "batch preflight")
    }

    func testAFailingCheckExitsNonZeroAndChangesNothing() async throws {
        // The name is taken on the destination.
        try TestData.writeMixed(folder.file("taken.img"), size: 1 << 20, seed: 3)
        try destination.addInstance("web1", disks: [folder.file("taken.img")])
        // An OS the destination does not have, and a hypervisor it does not enable.
        try TestData.writeMixed(folder.file("os1.img"), size: 1 << 20, seed: 4)
        try source.addInstance("os1", disks: [folder.file("os1.img")], extra: ["--os", "debootstrap+default", "--hypervisor", "xen-pvm"])
        // A destination OS with variants, listed as Ganeti's /2/os lists them.
        let os = destination.dir + "/os/image"
        try FileManager.default.createDirectory(atPath: os, withIntermediateDirectories: true)
        try "20\n".write(toFile: os + "/ganeti_api_version", atomically: true, encoding: .utf8)
        try "default\nminimal\n".write(toFile: os + "/variants.list", atomically: true, encoding: .utf8)
        let listed = try await destination.client().request(.GET, "/2/os")
        XCTAssertEqual(listed, .array([.string("image+default"), .string("image+minimal")]))
        let before = try await snapshot()

        let taken = try gntMove(arguments: arguments("web1", ["--preflight", "--json"]))
        XCTAssertEqual(taken.status, 1, taken.stdout + taken.stderr)
        try SchemaValidation.validate(lines(taken.stdout), schema: "run-event.schema.json")
        let dryRun = try XCTUnwrap(try events(taken.stdout).first { $0["check"]?.stringValue == "secret, name and space (destination dry run)" })
        XCTAssertEqual(dryRun["passed"]?.boolValue, false)
        XCTAssertTrue(dryRun["detail"]?.stringValue?.contains("already in the cluster") == true, dryRun.serialized)

        let missing = try gntMove(arguments: arguments("os1", ["--preflight"]))
        XCTAssertEqual(missing.status, 1, missing.stdout + missing.stderr)
        XCTAssertTrue(missing.stdout.contains("os1: FAIL OS on the destination: the instance's OS debootstrap+default is not installed on the destination (it has: image+default, image+minimal)"),
                      missing.stdout)
        XCTAssertTrue(missing.stdout.contains("os1: FAIL hypervisor on the destination: xen-pvm is not enabled on the destination"), missing.stdout)
        try await assertUnchanged(before, "failing checks")
    }

    /// `--bridge-map br0=br9`: the NIC on br0 is on br9 on the destination, the one on br1 keeps it.
    func testBridgeMapMovesTheMappedNICsOnly() async throws {
        let moved = try gntMove(arguments: arguments("web1", ["--bridge-map", "br0=br9", "--bridge-map", "br5=br6"]))
        XCTAssertEqual(moved.status, 0, moved.stdout + moved.stderr)
        let instance = try await destination.client().instance("web1")
        XCTAssertEqual(instance["nic.links"], .array([.string("br9"), .string("br1")]))
        XCTAssertEqual(instance["nic.macs"], .array([.string("aa:00:00:00:00:11"), .string("aa:00:00:00:00:12")]))
        let status = try XCTUnwrap(try JSONValue(parsing: try gntMove("status", "--json", "--state-dir", stateDir).stdout).arrayValue?.first)
        XCTAssertEqual(status["overrides"], .array([.string("nics[0].link=br9")]), "the mapped link is a declared override")
    }

    func testBadMapArgumentsAreUsageErrorsNamingTheOption() async throws {
        let before = try await snapshot()
        let cases: [([String], String)] = [
            (["--bridge-map", "br0"], "--bridge-map 'br0': expected OLD=NEW"),
            (["--bridge-map", "=br9"], "--bridge-map '=br9': expected OLD=NEW"),
            (["--bridge-map", "br0="], "--bridge-map 'br0=': expected OLD=NEW"),
            (["--bridge-map", "br0=br9", "--bridge-map", "br0=br8"], "--bridge-map 'br0=br8': 'br0' is mapped twice"),
            (["--bridge-map", "br0=../x"], "--bridge-map bridge '../x' is not a valid"),
            (["--storage-map", "xenvg=-vg"], "--storage-map volume group '-vg' is not a valid"),
            (["--storage-map", "template:plain=floppy"], "--storage-map 'template:plain=floppy': 'floppy' is not a disk template"),
            (["--storage-map", "template:plain=file", "--dest-disk-template", "plain"],
             "--storage-map template:plain=file contradicts --dest-disk-template plain"),
        ]
        for (extra, message) in cases {
            let result = try gntMove(arguments: arguments("web1", extra))
            XCTAssertEqual(result.status, 64, "\(extra): \(result.stdout)\(result.stderr)")
            XCTAssertTrue(result.stderr.contains(message), "\(extra): \(result.stderr)")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: stateDir), "a usage error records nothing")
        // The same in a run request: a malformed request (exit 2).
        let request: JSONValue = .object([
            "source": MoveEnd(source).json, "destination": MoveEnd(destination).json, "state_dir": .string(stateDir),
            "moves": .array([.object(["instance": .string("web1"), "bridge_map": .object(["br0": .string("../x")])])]),
        ])
        let run = try gntMove("run", stdin: request.serialized)
        XCTAssertEqual(run.status, 2, run.stdout + run.stderr)
        XCTAssertTrue(run.stdout.contains("moves[0]: 'bridge_map' bridge '../x' is not a valid"), run.stdout)
        try await assertUnchanged(before, "bad maps")
    }

    /// `--storage-map` sends a disk's volume group as Ganeti's `vg`: a file-backed agent has none
    /// and refuses it before creating anything; without `vg` the same request passes.
    func testAFileAgentRefusesAVolumeGroup() async throws {
        let client = try destination.client()
        var body = try JSONValue(parsing: #"{"__version__": 1, "mode": "create", "name": "vgtest", "disk_template": "file", "disks": [{"size": 1, "vg": "fastvg"}], "hypervisor": "kvm"}"#)
        do {
            _ = try await client.pollJob(try await client.createInstance(body, dryRun: true))
            XCTFail("a volume group on a file agent must be refused")
        } catch let error as RAPIJobError {
            XCTAssertEqual(error.ecode, "wrong_input", error.description)
            XCTAssertTrue(error.message.contains("disks[0].vg: this cluster has no volume group (its disks are files in"), error.message)
        }
        body = try JSONValue(parsing: #"{"__version__": 1, "mode": "create", "name": "vgtest", "disk_template": "file", "disks": [{"size": 1}], "hypervisor": "kvm"}"#)
        _ = try await client.pollJob(try await client.createInstance(body, dryRun: true))
        let instances = try await client.request(.GET, "/2/instances")
        XCTAssertEqual(instances, .array([]), "dry runs create nothing")
    }
}
