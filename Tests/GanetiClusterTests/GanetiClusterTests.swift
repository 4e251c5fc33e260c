import AgentTestSupport
import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// gnt-move against real Ganeti 3.0.2 clusters (Debian's packages, installed by scripts/setup):
/// moves from, to and between them, and a refusal by Ganeti. The clusters run in the lab of
/// Tests/GanetiLab/ganeti-lab (fake hypervisor, file disks), started once for the class.
///
/// The lab corrects one Ganeti 3.0.2 bug inside its namespaces only: an exporting Ganeti node
/// expects the common name "ganeti.example.com" from whatever it connects to, which a Ganeti
/// destination's per-move certificate does not carry (ganeti/ganeti#1681, fixed upstream after
/// 3.0.2). Without it no Ganeti 3.0.2 cluster can export to another; gnt-move's agents carry that
/// name, so Ganeti→agent moves behave the same with or without the correction.
final class GanetiClusterTests: XCTestCase {
    static let a = GanetiLab.Cluster(name: "a", index: 1)
    static let b = GanetiLab.Cluster(name: "b", index: 2)
    nonisolated(unsafe) static var lab: GanetiLab?
    nonisolated(unsafe) static var labError: (any Error)?

    var a: GanetiLab.Cluster { Self.a }
    var b: GanetiLab.Cluster { Self.b }
    var lab: GanetiLab!
    var folder: TemporaryDirectory!

    override class func setUp() {
        guard ProcessInfo.processInfo.environment["GNT_MOVE_SKIP_GANETI_LAB"] == nil else { return }
        do {
            guard getuid() == 0 else { throw LabError("the Ganeti lab needs root (namespaces, a bridge); GNT_MOVE_SKIP_GANETI_LAB=1 skips it") }
            lab = try GanetiLab(clusters: [a, b])
        } catch {
            labError = error
        }
    }

    override class func tearDown() {
        lab?.stop()
        lab = nil
    }

    override func setUpWithError() throws {
        if ProcessInfo.processInfo.environment["GNT_MOVE_SKIP_GANETI_LAB"] != nil { throw XCTSkip("GNT_MOVE_SKIP_GANETI_LAB is set") }
        if let error = Self.labError { throw error }
        lab = try XCTUnwrap(Self.lab)
        folder = TemporaryDirectory("ganeti")
    }

    /// A gnt-move agent on the host whose import daemons listen on the lab bridge, with the
    /// lab's OS definition and its hypervisor name (`fake`), so that Ganeti's instances fit.
    func startAgent() throws -> AgentHarness {
        let agent = try AgentHarness(cluster: "cluster-h", secret: lab.secret, folder: folder,
                                     initArguments: ["--hypervisor-driver", "fake", "--hypervisor", "fake"],
                                     dataAddress: GanetiLab.hostAddress)
        try FileManager.default.createDirectory(atPath: agent.dir + "/os", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: lab.osDefinition, toPath: agent.dir + "/os/lab-copy")
        try agent.start()
        return agent
    }

    /// The `move-failed` event of a `--json` run.
    func failureEvent(_ result: ProcessResult, file: StaticString = #filePath, line: UInt = #line) throws -> JSONValue {
        let events = try result.stdout.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
        return try XCTUnwrap(events.last { $0["event"]?.stringValue == "move-failed" }, result.stdout, file: file, line: line)
    }

    // MARK: 1. Ganeti → gnt-move agent, gzip

    func testGanetiToAgentWithGzip() async throws {
        let agent = try startAgent()
        defer { agent.stop() }
        let files = try lab.addInstance(b, "vm1.lab", diskMiB: [24, 8], running: true, seed: 10)
        let wanted = try DiskFingerprint.of(files)
        let keysBefore = try lab.keys(b)
        let others = try lab.instances(b).filter { $0.key != "vm1.lab" }

        let result = try gntMove(arguments: lab.end(b).moveArguments(to: MoveEnd(agent), ["vm1.lab"], stateDir: folder.file("state"))
                                 + ["--compress", "gzip"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)

        try DiskFingerprint.assertCopies([agent.dir + "/disks/vm1.lab.disk0", agent.dir + "/disks/vm1.lab.disk1"], hold: wanted)
        let moved = try await agent.client().instance("vm1.lab")
        XCTAssertEqual(moved["status"]?.stringValue, "running", "started, since it ran on the source")
        XCTAssertNil(try lab.instances(b)["vm1.lab"], "the source instance is removed")
        XCTAssertEqual(try lab.diskFiles(b, "vm1.lab"), [], "and its disks with it")
        XCTAssertEqual(try lab.instances(b).filter { $0.key != "vm1.lab" }, others)
        XCTAssertEqual(agent.keyNames, [])
        // Ganeti never removes the key its prepare-export made (docs/protocol.md §9.9) and has no call to
        // remove it: the source holds that one key, nothing else.
        XCTAssertEqual(try lab.keys(b).subtracting(keysBefore).count, 1)
    }

    // MARK: 2. gnt-move agent → Ganeti, renamed

    func testAgentToGanetiRenamed() async throws {
        let agent = try startAgent()
        defer { agent.stop() }
        let one = folder.file("vm2-0.img"), two = folder.file("vm2-1.img")
        try TestData.writeSparse(one, size: 20 << 20, dataRanges: [(0, 3 << 20), (17 << 20, 2 << 20)], seed: 20)
        try TestData.writeMixed(two, size: 6 << 20, seed: 21)
        let wanted = try DiskFingerprint.of([one, two])
        try agent.addInstance("vm2.lab", disks: [one, two], extra: ["--os", "lab-copy", "--running", "--nic", "mode=bridged,link=br0"])
        let keysBefore = try lab.keys(a)

        let result = try gntMove(arguments: MoveEnd(agent).moveArguments(to: lab.end(a), ["vm2.lab"], stateDir: folder.file("state"))
                                 + ["--dest-instance-name", "vm3.lab", "--dest-primary-node", a.node])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)

        try DiskFingerprint.assertCopies(try lab.diskFiles(a, "vm3.lab"), hold: wanted)
        let listed = try XCTUnwrap(try lab.instances(a)["vm3.lab"], "renamed on the destination")
        XCTAssertTrue(listed.hasPrefix("up Y "), listed)
        XCTAssertTrue(listed.contains("gnt-move:move:"), "carries the move's tag: \(listed)")
        XCTAssertNil(try lab.instances(a)["vm2.lab"])
        do {
            _ = try await agent.client().instance("vm2.lab")
            XCTFail("the source instance is removed")
        } catch let error as RAPIError { XCTAssertEqual(error.status, 404) }
        XCTAssertEqual(agent.keyNames, [])
        XCTAssertEqual(try lab.keys(a), keysBefore, "the destination removes its import key")
    }

    // MARK: 3. Ganeti → Ganeti, driven by gnt-move's coordinator

    func testGanetiToGanetiKeepingTheSource() throws {
        let files = try lab.addInstance(a, "vm4.lab", diskMiB: [16], running: false, seed: 40)
        let wanted = try DiskFingerprint.of(files)
        let keysBefore = (a: try lab.keys(a), b: try lab.keys(b))
        let sourceBefore = try XCTUnwrap(try lab.instances(a)["vm4.lab"])

        let result = try gntMove(arguments: lab.end(a).moveArguments(to: lab.end(b), ["vm4.lab"], stateDir: folder.file("state"))
                                 + ["--dest-primary-node", b.node, "--keep-source-instance", "--compress", "gzip"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)

        try DiskFingerprint.assertCopies(try lab.diskFiles(b, "vm4.lab"), hold: wanted)
        let moved = try XCTUnwrap(try lab.instances(b)["vm4.lab"])
        XCTAssertTrue(moved.hasPrefix("down N "), "stopped on the source, so not started: \(moved)")
        XCTAssertEqual(try lab.instances(a)["vm4.lab"], sourceBefore, "kept as asked, unchanged")
        XCTAssertEqual(try DiskFingerprint.of(files), wanted)
        XCTAssertEqual(try lab.keys(b), keysBefore.b)
        XCTAssertEqual(try lab.keys(a).subtracting(keysBefore.a).count, 1, "only Ganeti's own prepare-export key (docs/protocol.md §9.9)")
    }

    // MARK: 4. `gnt-move run` between Ganeti clusters, events checked against the schema

    func testRunBetweenGanetiClustersMatchesTheSchemas() throws {
        let files = try lab.addInstance(b, "vm5.lab", diskMiB: [12, 4], running: true, seed: 50)
        let wanted = try DiskFingerprint.of(files)
        let request: JSONValue = .object([
            "source": lab.end(b).json, "destination": lab.end(a).json, "state_dir": .string(folder.file("state")),
            "moves": .array([.object(["instance": .string("vm5.lab"), "dest_primary_node": .string(a.node), "compress": .string("gzip")])]),
        ])
        try SchemaValidation.validate([request.serialized], schema: "run-request.schema.json")

        let result = try gntMove("run", stdin: request.serialized)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        try SchemaValidation.validate(lines, schema: "run-event.schema.json")
        let events = try lines.map { try JSONValue(parsing: $0) }
        XCTAssertEqual(events.first?["event"]?.stringValue, "move-started")
        XCTAssertEqual(events.last?["event"]?.stringValue, "move-done")
        XCTAssertTrue(events.contains { $0["event"]?.stringValue == "disk-done" })

        try DiskFingerprint.assertCopies(try lab.diskFiles(a, "vm5.lab"), hold: wanted)
        XCTAssertTrue(try XCTUnwrap(try lab.instances(a)["vm5.lab"]).hasPrefix("up Y "))
        XCTAssertNil(try lab.instances(b)["vm5.lab"])
    }

    // MARK: 5. Refusals by Ganeti (a taken name, an unresolvable one, an unoffered compression)
    // leave everything as it was

    func testNameTakenOnGanetiLeavesEverythingUntouched() async throws {
        let agent = try startAgent()
        defer { agent.stop() }
        _ = try lab.addInstance(a, "vm7.lab", diskMiB: [8], running: true, seed: 70)
        let image = folder.file("vm6.img")
        try TestData.writeMixed(image, size: 4 << 20, seed: 60)
        try agent.addInstance("vm6.lab", disks: [image], extra: ["--os", "lab-copy", "--running"])
        // An instance name Ganeti cannot resolve: it refuses the remote import (resolver_error).
        let unlisted = folder.file("unlisted.img")
        try TestData.writeMixed(unlisted, size: 2 << 20, seed: 61)
        try agent.addInstance("unlisted.lab", disks: [unlisted], extra: ["--os", "lab-copy"])
        let ganetiBefore = (instances: try lab.instances(a), files: try lab.storedFiles(a), keys: try lab.keys(a), jobs: try lab.jobSummaries(a).count)
        let agentBefore = try await SystemSnapshot.take([agent], folder: folder)

        let taken = try gntMove(arguments: MoveEnd(agent).moveArguments(to: lab.end(a), ["vm6.lab"], stateDir: folder.file("state"))
                                + ["--dest-instance-name", "vm7.lab", "--dest-primary-node", a.node, "--json"])
        XCTAssertEqual(taken.status, 1, taken.stdout + taken.stderr)
        let failed = try failureEvent(taken)
        XCTAssertEqual(failed["reason"]?.stringValue, "refused", failed.serialized)
        XCTAssertTrue(failed["message"]?.stringValue?.contains("already") == true, failed.serialized)

        let unresolvable = try gntMove(arguments: MoveEnd(agent).moveArguments(to: lab.end(a), ["unlisted.lab"], stateDir: folder.file("state"))
                                       + ["--dest-primary-node", a.node, "--json"])
        XCTAssertEqual(unresolvable.status, 1, unresolvable.stdout + unresolvable.stderr)
        let refused = try failureEvent(unresolvable)
        XCTAssertEqual(refused["reason"]?.stringValue, "refused", "resolver_error is a refusal, not retried: \(refused.serialized)")

        // A compression Ganeti does not offer is refused before anything is prepared or created.
        let zstd = try gntMove(arguments: MoveEnd(agent).moveArguments(to: lab.end(a), ["vm6.lab"], stateDir: folder.file("state"))
                               + ["--dest-instance-name", "vm8.lab", "--dest-primary-node", a.node, "--compress", "zstd", "--json"])
        XCTAssertEqual(zstd.status, 1, zstd.stdout + zstd.stderr)
        let unoffered = try failureEvent(zstd)
        XCTAssertEqual(unoffered["reason"]?.stringValue, "refused", unoffered.serialized)
        XCTAssertTrue(unoffered["message"]?.stringValue?.contains("does not offer --compress zstd") == true, unoffered.serialized)

        // Ganeti's side: the same instances (state, uuid, tags), the same bytes in every disk,
        // no key, and exactly one create job per refused move (no retry).
        XCTAssertEqual(try lab.instances(a), ganetiBefore.instances)
        XCTAssertEqual(try lab.storedFiles(a), ganetiBefore.files)
        XCTAssertEqual(try lab.keys(a), ganetiBefore.keys)
        let jobs = try lab.jobSummaries(a).dropFirst(ganetiBefore.jobs)
        XCTAssertEqual(jobs.filter { $0.hasPrefix("INSTANCE_CREATE") }, ["INSTANCE_CREATE(vm7.lab)", "INSTANCE_CREATE(unlisted.lab)"])
        // The agent's side: both instances as they were (running again), their files, no key.
        try await SystemSnapshot.take([agent], folder: folder).assertSame(as: agentBefore, "after both refusals")
        XCTAssertEqual(agent.keyNames, [])
    }

    // MARK: 5b. --preflight towards Ganeti

    /// The plan names Ganeti's stream (Ganeti has no gnt-move-stream-v1); the OS is among
    /// Ganeti's `/2/os`, the hypervisor among its `enabled_hypervisors`, and the source name is
    /// checked with the resolver (the lab's names resolve only inside its namespaces: a warning
    /// once Ganeti's dry run resolved it; a failure when Ganeti cannot either). Nothing changes.
    func testPreflightToGanetiPlansGanetisStreamAndChecksOSHypervisorAndName() async throws {
        let agent = try startAgent()
        defer { agent.stop() }
        let image = folder.file("vm11.img")
        try TestData.writeMixed(image, size: 4 << 20, seed: 110)
        try agent.addInstance("vm11.lab", disks: [image], extra: ["--os", "lab-copy", "--running", "--nic", "mode=bridged,link=br0"])
        let unlisted = folder.file("unlisted2.img")
        try TestData.writeMixed(unlisted, size: 2 << 20, seed: 111)
        try agent.addInstance("unlisted2.lab", disks: [unlisted], extra: ["--os", "lab-copy"])
        let ganetiBefore = (instances: try lab.instances(a), files: try lab.storedFiles(a))
        let agentBefore = try await SystemSnapshot.take([agent], folder: folder)

        let result = try gntMove(arguments: MoveEnd(agent).moveArguments(to: lab.end(a), ["vm11.lab"], stateDir: folder.file("state"))
                                 + ["--dest-primary-node", a.node, "--compress", "gzip", "--preflight", "--json"])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        try SchemaValidation.validate(lines, schema: "run-event.schema.json")
        let events = try lines.map { try JSONValue(parsing: $0) }
        let plan = try XCTUnwrap(events.first { $0["event"]?.stringValue == "preflight-plan" }, result.stdout)
        XCTAssertEqual(plan["stream"]?.stringValue, "ganeti")
        XCTAssertEqual(plan["destination_node"]?.stringValue, a.node)
        XCTAssertEqual(plan["disks"]?.arrayValue?.map { $0["size_mib"]?.integerValue }, [4])
        func check(_ name: String) -> JSONValue? { events.first { $0["check"]?.stringValue == name } }
        XCTAssertEqual(check("OS on the destination")?["passed"]?.boolValue, true, result.stdout)
        XCTAssertEqual(check("hypervisor on the destination")?["passed"]?.boolValue, true, result.stdout)
        let resolvable = try XCTUnwrap(check("source name resolvable"), result.stdout)
        XCTAssertEqual(resolvable["passed"]?.boolValue, true, resolvable.serialized)
        XCTAssertEqual(resolvable["warning"]?.boolValue, true, "the host cannot resolve the lab's names: \(resolvable.serialized)")

        let unresolvable = try gntMove(arguments: MoveEnd(agent).moveArguments(to: lab.end(a), ["unlisted2.lab"], stateDir: folder.file("state"))
                                       + ["--dest-primary-node", a.node, "--preflight"])
        XCTAssertEqual(unresolvable.status, 1, unresolvable.stdout + unresolvable.stderr)
        XCTAssertTrue(unresolvable.stdout.contains("unlisted2.lab: FAIL source name resolvable: unlisted2.lab does not resolve here"), unresolvable.stdout)

        XCTAssertEqual(try lab.instances(a), ganetiBefore.instances)
        XCTAssertEqual(try lab.storedFiles(a), ganetiBefore.files)
        try await SystemSnapshot.take([agent], folder: folder).assertSame(as: agentBefore, "after the preflights")
    }

    // MARK: 6. --warm with a Ganeti end

    /// Ganeti takes no pre-copy passes: `--warm` with a Ganeti source or destination is refused
    /// before anything is prepared, stopped or created, at preflight and in a move.
    func testWarmMoveIsRefusedByGanetiEitherWay() async throws {
        let agent = try startAgent()
        defer { agent.stop() }
        _ = try lab.addInstance(b, "vm9.lab", diskMiB: [8], running: true, seed: 90)
        let image = folder.file("vm10.img")
        try TestData.writeMixed(image, size: 4 << 20, seed: 100)
        try agent.addInstance("vm10.lab", disks: [image], extra: ["--running"])
        let ganetiBefore = (a: try lab.instances(a), b: try lab.instances(b), filesA: try lab.storedFiles(a), filesB: try lab.storedFiles(b),
                            keysA: try lab.keys(a), keysB: try lab.keys(b), jobsA: try lab.jobSummaries(a).count, jobsB: try lab.jobSummaries(b).count)
        let agentBefore = try await SystemSnapshot.take([agent], folder: folder)

        let fromGaneti = try gntMove(arguments: lab.end(b).moveArguments(to: MoveEnd(agent), ["vm9.lab"], stateDir: folder.file("state"))
                                     + ["--warm", "--json"])
        XCTAssertEqual(fromGaneti.status, 1, fromGaneti.stdout + fromGaneti.stderr)
        let refusedSource = try failureEvent(fromGaneti)
        XCTAssertEqual(refusedSource["reason"]?.stringValue, "incompatible-destination", refusedSource.serialized)
        XCTAssertTrue(refusedSource["message"]?.stringValue?.contains("the source cluster cannot take part in a warm move") == true, refusedSource.serialized)

        let toGaneti = try gntMove(arguments: MoveEnd(agent).moveArguments(to: lab.end(a), ["vm10.lab"], stateDir: folder.file("state"))
                                   + ["--dest-primary-node", a.node, "--warm", "--json"])
        XCTAssertEqual(toGaneti.status, 1, toGaneti.stdout + toGaneti.stderr)
        let refusedDestination = try failureEvent(toGaneti)
        XCTAssertEqual(refusedDestination["reason"]?.stringValue, "incompatible-destination", refusedDestination.serialized)
        XCTAssertTrue(refusedDestination["message"]?.stringValue?.contains("the destination cluster cannot take part in a warm move") == true,
                      refusedDestination.serialized)

        let preflight = try gntMove(arguments: MoveEnd(agent).moveArguments(to: lab.end(a), ["vm10.lab"], stateDir: folder.file("state"))
                                    + ["--dest-primary-node", a.node, "--warm", "--preflight"])
        XCTAssertNotEqual(preflight.status, 0, preflight.stdout)
        XCTAssertTrue(preflight.stdout.contains("FAIL warm move: the destination cluster cannot take part in a warm move"), preflight.stdout)

        // Nothing asked of either Ganeti cluster: no job at all, the same instances, bytes and keys.
        XCTAssertEqual(try lab.instances(a), ganetiBefore.a)
        XCTAssertEqual(try lab.instances(b), ganetiBefore.b)
        XCTAssertEqual(try lab.storedFiles(a), ganetiBefore.filesA)
        XCTAssertEqual(try lab.storedFiles(b), ganetiBefore.filesB)
        XCTAssertEqual(try lab.keys(a), ganetiBefore.keysA)
        XCTAssertEqual(try lab.keys(b), ganetiBefore.keysB)
        XCTAssertEqual(try lab.jobSummaries(a).count, ganetiBefore.jobsA)
        XCTAssertEqual(try lab.jobSummaries(b).count, ganetiBefore.jobsB)
        try await SystemSnapshot.take([agent], folder: folder).assertSame(as: agentBefore, "after the refused warm moves")
        XCTAssertEqual(agent.keyNames, [])
    }
}
