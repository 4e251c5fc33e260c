import AgentTestSupport
import BlockStream
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// `gnt-move move`, `status`, `resume` as a user runs them, between two real agents.
final class CoordinatorTests: XCTestCase {
    var folder: TemporaryDirectory!
    var source: AgentHarness!
    var destination: AgentHarness!
    var stateDir: String { folder.file("state") }

    override func setUpWithError() throws {
        let pair = try AgentPair("coordinator")
        (folder, source, destination) = (pair.folder, pair.source, pair.destination)
    }

    override func tearDown() {
        source?.stop()
        destination?.stop()
    }

    func moveArguments(_ instances: [String], extra: [String] = []) -> [String] {
        source.moveArguments(to: destination, instances, stateDir: stateDir) + extra
    }

    /// The port of the destination's disk-0 importer, from its status file, once an exporter is
    /// connected to it.
    func importerPort() -> Int? {
        let folders = (try? FileManager.default.contentsOfDirectory(atPath: destination.dir + "/import-export")) ?? []
        for name in folders where name.hasPrefix("import-disk0-") {
            let status = try? ImportExportStatus.load(path: destination.dir + "/import-export/\(name)/status")
            if status?.connected == true, let port = status?.listen_port { return port }
        }
        return nil
    }

    func importerConnected() -> Bool { importerPort() != nil }

    /// Moves a new running instance `name` with `size` bytes of random data at 8 MB/s, with JSON
    /// events, in the background; returns once its disk is on the wire, with the image's sha256.
    func startSlowMove(_ name: String, size: Int) throws -> (move: BackgroundProcess, digest: String) {
        let image = folder.file("\(name).img")
        try TestData.writeRandom(image, size: size)
        let digest = try TestData.sha256(image)
        try source.addInstance(name, disks: [image], extra: ["--running"])
        let move = try BackgroundProcess(Repository.gntMove, moveArguments([name], extra: ["--json", "--bwlimit", "8M"]))
        XCTAssertTrue(waitFor(timeout: 60) { self.importerConnected() }, "the transfer never connected: \(move.stdout)")
        return (move, digest)
    }

    /// The bytes on the wire that a `disk-done` event reports.
    func wireBytes(_ lines: [JSONValue]) throws -> Int64 { try diskDone(lines, "bytes on the wire") }

    /// The number before `what` (`bytes on the wire`, `bytes changed`) in the last `disk-done` event.
    func diskDone(_ lines: [JSONValue], _ what: String) throws -> Int64 {
        let done = try XCTUnwrap(lines.last { $0["event"]?.stringValue == "disk-done" }?["message"]?.stringValue, "no disk-done event")
        return try XCTUnwrap(done.components(separatedBy: ", ").first { $0.hasSuffix(what) }.flatMap { Int64($0.split(separator: " ")[0]) }, done)
    }

    /// `name` was moved: its disk holds `digest` on the destination, where it exists once; the
    /// source instance is gone; no per-move key is left on either side.
    func assertMovedOnce(_ name: String, digest: String, _ label: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/\(name).disk0"), digest, label, file: file, line: line)
        let list = try await destination.client().request(.GET, "/2/instances")
        XCTAssertEqual(list.arrayValue?.filter { $0["id"]?.stringValue == name }.count, 1, "\(label): exactly once", file: file, line: line)
        do {
            _ = try await source.client().instance(name)
            XCTFail("\(label): the source must be removed", file: file, line: line)
        } catch let error as RAPIError { XCTAssertEqual(error.status, 404, file: file, line: line) }
        XCTAssertEqual(source.keyNames + destination.keyNames, [], label, file: file, line: line)
    }

    func events(_ output: String) throws -> [JSONValue] {
        try output.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
    }

    func testMoveSeveralInstancesWithJSONEvents() throws {
        var digests: [String: String] = [:]
        for name in ["web1", "web2", "web3"] {
            let image = folder.file("\(name).img")
            try TestData.writeSparse(image, size: 8 << 20, dataRanges: [(0, 1 << 20), (5 << 20, 1 << 20 + 99)], seed: UInt64(name.count + name.hashValue & 0xff))
            digests[name] = try TestData.sha256(image)
            try source.addInstance(name, disks: [image], extra: ["--running"])
        }
        let result = try gntMove(arguments: moveArguments(["web1", "web2", "web3"], extra: ["--json", "--compress", "zstd"]))
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let lines = try events(result.stdout)
        XCTAssertEqual(lines.filter { $0["event"]?.stringValue == "move-done" }.count, 3)
        XCTAssertEqual(lines.filter { $0["event"]?.stringValue == "move-started" }.count, 3)
        for line in lines {
            XCTAssertNotNil(line["move_id"]?.stringValue)
            XCTAssertNotNil(line["instance"]?.stringValue)
            XCTAssertNotNil(line["time"]?.stringValue)
        }
        for (name, digest) in digests {
            XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/\(name).disk0"), digest, name)
        }
        XCTAssertEqual(source.keyNames + destination.keyNames, [])
        let status = try gntMove("status", "--json", "--state-dir", stateDir)
        let moves = try XCTUnwrap(try JSONValue(parsing: status.stdout).arrayValue)
        XCTAssertEqual(moves.count, 3)
        for move in moves {
            XCTAssertEqual(move["state"]?.stringValue, "done")
            XCTAssertNotNil(move["id"]?.stringValue)
            XCTAssertNotNil(move["instance"]?.stringValue)
            XCTAssertNotNil(move["updated"]?.stringValue)
        }
    }

    func testRenamedKeptSourceAndFailureIsCleanedUp() async throws {
        let image = folder.file("db.img")
        try TestData.writeMixed(image, size: 4 << 20)
        try source.addInstance("db", disks: [image], extra: ["--running", "--nic", "mac=aa:00:00:00:00:42,mode=bridged,link=br0"])
        let renamed = try gntMove(arguments: moveArguments(["db"], extra: ["--dest-instance-name", "db-new", "--keep-source-instance", "--no-start",
                                                                           "--net", "0:link=br9", "-B", "maxmem=256"]))
        XCTAssertEqual(renamed.status, 0, renamed.stdout + renamed.stderr)
        let kept = try await source.client().instance("db")
        XCTAssertEqual(kept["name"]?.stringValue, "db")
        let moved = try await destination.client().instance("db-new")
        XCTAssertEqual(moved["admin_state"]?.stringValue, "down", "--no-start")
        XCTAssertEqual(moved["nic.links"], .array([.string("br9")]), "--net override")
        XCTAssertEqual(moved["nic.macs"], .array([.string("aa:00:00:00:00:42")]))
        XCTAssertEqual(moved["beparams"]?["maxmem"], .int(256), "-B override")
        // The source stays down after a move that keeps it (no two copies run). Start it, then
        // move it to the same name again: the destination refuses, the move fails cleanly, and
        // the source is left running.
        let client = try self.source.client()
        _ = try await client.pollJob(try await client.startup("db"))
        let again = try gntMove(arguments: moveArguments(["db"], extra: ["--dest-instance-name", "db-new", "--json"]))
        XCTAssertEqual(again.status, 1)
        let failed = try XCTUnwrap(try events(again.stdout).last)
        XCTAssertEqual(failed["event"]?.stringValue, "move-failed")
        XCTAssertEqual(failed["reason"]?.stringValue, "refused")
        XCTAssertTrue(failed["message"]?.stringValue?.contains("already in the cluster") == true, failed.serialized)
        let source = try await self.source.client().instance("db")
        XCTAssertEqual(source["status"]?.stringValue, "running")
    }

    func testUnknownInstanceFailsWithAReason() throws {
        let result = try gntMove(arguments: moveArguments(["ghost"], extra: ["--json"]))
        XCTAssertEqual(result.status, 1)
        let failed = try XCTUnwrap(try events(result.stdout).last)
        XCTAssertEqual(failed["reason"]?.stringValue, "instance-not-found")
    }

    /// The destination agent is SIGKILLed in the middle of the transfer and restarted: it keeps
    /// the half-imported instance (import-interrupted), and the coordinator asks it to import
    /// again into those disks, with fresh keys; only the chunks they lack cross the wire again.
    func testDestinationAgentKilledMidTransferContinuesIntoWhatItKept() async throws {
        let size = 48 << 20
        let (coordinator, digest) = try startSlowMove("big", size: size)
        usleep(2_500_000)
        destination.stop()
        try destination.start()
        try await assertContinuedIntoTheKeptDisk(coordinator, name: "big", digest: digest, size: size)
    }

    /// The destination's import daemon is SIGKILLed mid-transfer (its agent stays up): the same.
    func testImporterKilledMidTransferContinuesIntoWhatItKept() async throws {
        let size = 48 << 20
        let (coordinator, digest) = try startSlowMove("imp", size: size)
        usleep(2_500_000)
        let folders = try FileManager.default.contentsOfDirectory(atPath: destination.dir + "/import-export").filter { $0.hasPrefix("import-disk0-") }
        let pidText = try String(contentsOfFile: destination.dir + "/import-export/\(try XCTUnwrap(folders.first))/pid", encoding: .utf8)
        XCTAssertEqual(kill(try XCTUnwrap(Int32(pidText.trimmingCharacters(in: .whitespacesAndNewlines))), SIGKILL), 0)
        try await assertContinuedIntoTheKeptDisk(coordinator, name: "imp", digest: digest, size: size)
    }

    /// A move whose destination import died ends done in the same attempt: continued (not
    /// retried), the disk identical, fewer bytes sent again than the disk holds, created once,
    /// the source removed, no key left, every event valid.
    func assertContinuedIntoTheKeptDisk(_ coordinator: BackgroundProcess, name: String, digest: String, size: Int,
                                        file: StaticString = #filePath, line: UInt = #line) async throws {
        XCTAssertEqual(coordinator.wait(timeout: 120), 0, coordinator.stdout + coordinator.stderr, file: file, line: line)
        let lines = try events(coordinator.stdout)
        XCTAssertFalse(lines.contains { $0["step"]?.stringValue == "retry" }, coordinator.stdout, file: file, line: line)
        XCTAssertNotNil(lines.first { $0["step"]?.stringValue == "resume-transfer"
            && $0["message"]?.stringValue?.contains("importing again into it, only the chunks that differ are sent") == true }, coordinator.stdout, file: file, line: line)
        // What the destination held before its import died was not sent again.
        let changed = try diskDone(lines, "bytes changed")
        XCTAssertLessThan(changed, Int64(size - (8 << 20)), "at least 8 MiB were kept: \(coordinator.stdout)", file: file, line: line)
        let id = try XCTUnwrap(lines.first?["move_id"]?.stringValue)
        let status = try XCTUnwrap(try JSONValue(parsing: try gntMove("status", id, "--json", "--state-dir", stateDir).stdout).arrayValue?.first)
        XCTAssertEqual(status["kept_bytes"]?.integerValue, Int64(size) - changed, "status shows what was kept", file: file, line: line)
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/\(name).disk0"), digest, file: file, line: line)
        let list = try await destination.client().request(.GET, "/2/instances")
        XCTAssertEqual(list.arrayValue?.count, 1, "exactly once", file: file, line: line)
        let sources = try await source.client().request(.GET, "/2/instances")
        XCTAssertEqual(sources, .array([]), "the source was removed", file: file, line: line)
        XCTAssertTrue(waitFor(timeout: 30) { self.source.keyNames.isEmpty && self.destination.keyNames.isEmpty }, file: file, line: line)
        try SchemaValidation.validate(coordinator.stdout.split(separator: "\n").map(String.init), schema: "run-event.schema.json")
    }

    /// The source agent is SIGKILLed mid-transfer and restarted: its export job fails, the
    /// destination's importer still waits, and the coordinator exports again with the same key,
    /// continuing from the importer's journal in the same attempt (no retry from scratch).
    func testSourceAgentKilledMidTransferContinues() async throws {
        let (coordinator, digest) = try startSlowMove("srcdown", size: 48 << 20)
        usleep(2_500_000)
        source.stop()
        try source.start()
        XCTAssertEqual(coordinator.wait(timeout: 120), 0, coordinator.stdout + coordinator.stderr)
        let lines = try events(coordinator.stdout)
        XCTAssertFalse(lines.contains { $0["step"]?.stringValue == "retry" }, coordinator.stdout)
        let resumed = lines.filter { $0["step"]?.stringValue == "resume-transfer" }
        XCTAssertNotNil(resumed.first { $0["message"]?.stringValue?.contains("exporting again from where its journal stopped") == true }, coordinator.stdout)
        let offset = try XCTUnwrap(resumed.compactMap { $0["offset"]?.integerValue }.first, coordinator.stdout)
        XCTAssertGreaterThan(offset, 4 << 20, "what arrived before the source went down was kept")
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/srcdown.disk0"), digest)
        let list = try await destination.client().request(.GET, "/2/instances")
        XCTAssertEqual(list.arrayValue?.count, 1, "exactly once")
        let sources = try await source.client().request(.GET, "/2/instances")
        XCTAssertEqual(sources, .array([]), "the source was removed after the destination confirmed the disk")
        XCTAssertTrue(waitFor(timeout: 30) { self.source.keyNames.isEmpty && self.destination.keyNames.isEmpty })
        try SchemaValidation.validate(coordinator.stdout.split(separator: "\n").map(String.init), schema: "run-event.schema.json")
    }

    /// The coordinator is SIGKILLed while a disk is on the wire: the agents carry on, and
    /// `resume` follows the same jobs to the end; nothing is sent twice, nothing is retried.
    func testCoordinatorKilledMidTransferResumesWithoutSendingAgain() throws {
        let size = 32 << 20
        let (coordinator, digest) = try startSlowMove("coord", size: size)
        usleep(1_500_000)
        coordinator.kill(SIGKILL)
        coordinator.wait()
        let id = try XCTUnwrap(try events(coordinator.stdout).first?["move_id"]?.stringValue)
        let resumed = try gntMove("resume", id, "--json", "--state-dir", stateDir)
        XCTAssertEqual(resumed.status, 0, resumed.stdout + resumed.stderr)
        let lines = try events(resumed.stdout)
        XCTAssertEqual(lines.last?["event"]?.stringValue, "move-done", resumed.stdout)
        XCTAssertFalse(lines.contains { $0["step"]?.stringValue == "retry" || $0["step"]?.stringValue == "resume-transfer" }, resumed.stdout)
        let wire = try wireBytes(lines)
        XCTAssertLessThan(wire, Int64(size) + Int64(2 << 20), "the disk crossed the wire once: \(resumed.stdout)")
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/coord.disk0"), digest)
        XCTAssertEqual(source.keyNames + destination.keyNames, [])
    }

    func testAbortCancelsJobsAndRestoresTheSource() async throws {
        let image = folder.file("slow.img")
        try TestData.writeMixed(image, size: 32 << 20, seed: 78)
        try source.addInstance("slow", disks: [image], extra: ["--running"])
        let coordinator = try BackgroundProcess(Repository.gntMove, moveArguments(["slow"], extra: ["--json", "--bwlimit", "2M"]))
        var moveId: String?
        XCTAssertTrue(waitFor(timeout: 30) {
            guard coordinator.stdout.contains("\"export\"") else { return false }
            moveId = (try? JSONValue(parsing: String(coordinator.stdout.split(separator: "\n").first ?? "")))?["move_id"]?.stringValue
            return moveId != nil
        })
        usleep(500_000)
        coordinator.kill(SIGKILL)
        coordinator.wait()
        let aborted = try gntMove("abort", try XCTUnwrap(moveId), "--state-dir", stateDir)
        XCTAssertEqual(aborted.status, 0, aborted.stderr)
        let status = try JSONValue(parsing: try gntMove("status", try XCTUnwrap(moveId), "--json", "--state-dir", stateDir).stdout)
        XCTAssertEqual(status.arrayValue?.first?["state"]?.stringValue, "cleaned")
        XCTAssertTrue(waitFor(timeout: 30) { ((try? runProcess("/usr/bin/curl", ["-sk", "https://127.0.0.1:\(self.destination.port)/2/instances"]))?.stdout ?? "").contains("[]") })
        XCTAssertTrue(waitFor(timeout: 30) { self.source.keyNames.isEmpty && self.destination.keyNames.isEmpty })
        let restored = try await source.client().instance("slow")
        XCTAssertEqual(restored["status"]?.stringValue, "running", "started again")
    }

    /// The data connection of a move between two agents is reset at about half-way (both
    /// sockets, as `ss -K` does): the disk continues from the importer's journal in the same
    /// move, and the event stream and `status` say so.
    func testCutDataConnectionContinuesTheDisk() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ss") else { throw XCTSkip("ss (iproute2) is not installed") }
        let size = 48 << 20
        let (move, digest) = try startSlowMove("cut", size: size)
        let dataPort = try XCTUnwrap(importerPort())
        Thread.sleep(forTimeInterval: 3)
        XCTAssertGreaterThan(try resetTCPConnections(port: dataPort), 0, "nothing to cut")
        XCTAssertEqual(move.wait(timeout: 120), 0, move.stdout + move.stderr)
        let lines = try events(move.stdout)
        XCTAssertEqual(lines.last?["event"]?.stringValue, "move-done", move.stdout)
        let resumed = lines.filter { $0["step"]?.stringValue == "resume-transfer" }
        XCTAssertEqual(resumed.count, 1, move.stdout)
        let offset = try XCTUnwrap(resumed.first?["offset"]?.integerValue)
        XCTAssertGreaterThan(offset, 8 << 20, "the bytes before the cut were kept")
        try SchemaValidation.validate(move.stdout.split(separator: "\n").map(String.init), schema: "run-event.schema.json")
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/cut.disk0"), digest)
        // The disk did not start over: the wire carried about one disk, not one and a half.
        XCTAssertLessThan(try wireBytes(lines), Int64(size) + Int64(12 << 20), move.stdout)
        XCTAssertEqual(source.keyNames + destination.keyNames, [])
        let status = try JSONValue(parsing: try gntMove("status", "--json", "--state-dir", stateDir).stdout)
        XCTAssertEqual(status.arrayValue?.first?["transfer_resumes"]?.arrayValue?.first?["offset"]?.integerValue, offset)
    }

    func testPreflightChecksWithoutMovingAnything() async throws {
        let image = folder.file("pf.img")
        try TestData.writeMixed(image, size: 2 << 20)
        try source.addInstance("pf", disks: [image], extra: ["--running"])
        let good = try gntMove(arguments: moveArguments(["pf"], extra: ["--preflight"]))
        XCTAssertEqual(good.status, 0, good.stdout + good.stderr)
        XCTAssertTrue(good.stdout.contains("ok   secret, name and space (destination dry run)"), good.stdout)
        XCTAssertEqual(source.keyNames + destination.keyNames, [], "the preflight's key was discarded")
        let still = try await source.client().instance("pf")
        XCTAssertEqual(still["status"]?.stringValue, "running", "nothing was shut down")
        let none = try await destination.client().request(.GET, "/2/instances")
        XCTAssertEqual(none, .array([]))

        let wrongPassword = folder.write("wrong-password", "nope\n")
        var arguments = moveArguments(["pf"], extra: ["--preflight"])
        arguments[arguments.firstIndex(of: destination.dir + "/password")!] = wrongPassword
        let refused = try gntMove(arguments: arguments)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stdout.contains("FAIL destination credentials"), refused.stdout)

        // A destination of another cluster domain: the dry run refuses the handshake.
        let otherSecret = folder.file("other-cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", otherSecret).status, 0)
        let stranger = try AgentHarness(cluster: "cluster-x", secret: otherSecret, folder: folder)
        try stranger.start()
        defer { stranger.stop() }
        var strangerArguments = moveArguments(["pf"], extra: ["--preflight"])
        strangerArguments[strangerArguments.firstIndex(of: String(destination.port))!] = String(stranger.port)
        strangerArguments[strangerArguments.firstIndex(of: destination.dir + "/rapi.crt")!] = stranger.dir + "/rapi.crt"
        strangerArguments[strangerArguments.firstIndex(of: destination.dir + "/password")!] = stranger.dir + "/password"
        let foreign = try gntMove(arguments: strangerArguments)
        XCTAssertEqual(foreign.status, 1)
        XCTAssertTrue(foreign.stdout.contains("Hash didn't match, clusters don't share the same domain secret"), foreign.stdout)
    }

    func testTimeoutGivesUpAndCleansUp() async throws {
        let image = folder.file("to.img")
        try TestData.writeRandom(image, size: 24 << 20)
        try source.addInstance("to", disks: [image], extra: ["--running"])
        let result = try gntMove(arguments: moveArguments(["to"], extra: ["--json", "--bwlimit", "1M", "--timeout", "4"]))
        XCTAssertEqual(result.status, 1, result.stdout)
        let failed = try XCTUnwrap(try events(result.stdout).last)
        XCTAssertEqual(failed["reason"]?.stringValue, "timeout")
        XCTAssertTrue(waitFor(timeout: 30) { ((try? runProcess("/usr/bin/curl", ["-sk", "https://127.0.0.1:\(self.destination.port)/2/instances"]))?.stdout ?? "").contains("[]") })
        let restored = try await source.client().instance("to")
        XCTAssertEqual(restored["status"]?.stringValue, "running")
    }

    /// SIGKILL the coordinator right after each recorded state, then resume: the instance ends
    /// on the destination exactly once, with identical data, the source removed, no keys left.
    func testCrashAtEveryStateBoundaryThenResume() async throws {
        let states = ["planned", "source-prepared", "destination-created", "destination-listening", "exporting",
                      "disks-done", "finalized", "source-removed"]
        for (index, state) in states.enumerated() {
            let name = "vm\(index)"
            let image = folder.file("\(name).img")
            try TestData.writeMixed(image, size: 3 << 20, seed: UInt64(index + 10))
            let digest = try TestData.sha256(image)
            try source.addInstance(name, disks: [image], extra: ["--running"])
            var environment = ProcessInfo.processInfo.environment
            environment["GNT_MOVE_CRASH_AFTER"] = state
            let crashed = try runProcess(Repository.gntMove, moveArguments([name], extra: ["--json"]), environment: environment)
            XCTAssertEqual(crashed.status, 9, "\(state): killed by SIGKILL (\(crashed.stderr))")
            let started = try XCTUnwrap(try events(crashed.stdout).first { $0["event"]?.stringValue == "move-started" })
            let id = try XCTUnwrap(started["move_id"]?.stringValue)
            let status = try JSONValue(parsing: try gntMove("status", id, "--json", "--state-dir", stateDir).stdout)
            XCTAssertEqual(status.arrayValue?.first?["state"]?.stringValue, state)
            let resumed = try gntMove("resume", id, "--state-dir", stateDir)
            XCTAssertEqual(resumed.status, 0, "\(state): \(resumed.stdout) \(resumed.stderr)")
            try await assertMovedOnce(name, digest: digest, state)
            let final = try JSONValue(parsing: try gntMove("status", id, "--json", "--state-dir", stateDir).stdout)
            XCTAssertEqual(final.arrayValue?.first?["state"]?.stringValue, "done")
        }
    }
}
