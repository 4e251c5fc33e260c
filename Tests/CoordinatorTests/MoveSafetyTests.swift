import AgentTestSupport
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// A move never destroys or alters what it does not own. Each test records both clusters
/// (every instance, every file, byte for byte), makes a move fail at one point, and checks that
/// after the cleanup nothing that existed before changed, the source is intact, no instance runs
/// twice and no per-move key is left.
final class MoveSafetyTests: XCTestCase {
    var folder: TemporaryDirectory!
    var source: AgentHarness!
    var destination: AgentHarness!
    var stateDir: String { folder.file("state") }

    override func setUpWithError() throws {
        let pair = try AgentPair("safety")
        (folder, source, destination) = (pair.folder, pair.source, pair.destination)
        // The source's db1, and a destination that already has an unrelated db1 of its own.
        try TestData.writeMixed(folder.file("db1.img"), size: 3 << 20, seed: 5)
        try source.addInstance("db1", disks: [folder.file("db1.img")], extra: ["--running", "--nic", "mac=aa:00:00:00:00:01,mode=bridged,link=br0"])
        try TestData.writeMixed(folder.file("keep1.img"), size: 2 << 20, seed: 6)
        try source.addInstance("keep1", disks: [folder.file("keep1.img")])
        try TestData.writeMixed(folder.file("keep-me.raw"), size: 2 << 20, seed: 7)
        try destination.addInstance("db1", disks: [folder.file("keep-me.raw")], extra: ["--running"])
        try TestData.writeMixed(folder.file("other.img"), size: 1 << 20, seed: 8)
        try destination.addInstance("other", disks: [folder.file("other.img")])
    }

    override func tearDown() {
        source?.stop()
        destination?.stop()
    }

    func move(_ instance: String, _ extra: [String] = [], environment: [String: String]? = nil) throws -> ProcessResult {
        try runProcess(Repository.gntMove, source.moveArguments(to: destination, [instance], stateDir: stateDir) + ["--json"] + extra,
                       environment: environment)
    }

    func snapshot() async throws -> SystemSnapshot { try await SystemSnapshot.take([source, destination], folder: folder) }

    /// The invariants after a failed move: everything as before, and no key left anywhere.
    func assertUntouched(_ before: SystemSnapshot, _ label: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        XCTAssertTrue(waitFor(timeout: 30) { self.source.keyNames.isEmpty && self.destination.keyNames.isEmpty },
                      "\(label): keys left: \(source.keyNames + destination.keyNames)", file: file, line: line)
        let after = try await snapshot()
        after.assertSame(as: before, label, file: file, line: line)
    }

    func lastEvent(_ result: ProcessResult) throws -> JSONValue {
        try JSONValue(parsing: String(result.stdout.split(separator: "\n").last ?? ""))
    }

    /// The reproduction of the data loss: the destination refuses a taken name, and the cleanup
    /// must not remove the destination's own db1 or its adopted disk.
    func testNameTakenOnTheDestinationRemovesNothing() async throws {
        let before = try await snapshot()
        let result = try move("db1")
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        let failed = try lastEvent(result)
        XCTAssertEqual(failed["reason"]?.stringValue, "refused", failed.serialized)
        XCTAssertTrue(failed["message"]?.stringValue?.contains("already in the cluster") == true, failed.serialized)
        XCTAssertFalse(failed.serialized.contains("removed the half-created"), failed.serialized)
        try await assertUntouched(before, "name taken")
    }

    /// Running a finished move that kept its source a second time: the destination's copy (made
    /// by the first move, not this one) survives the second move's cleanup.
    func testSecondRunOfAFinishedMoveRemovesNothing() async throws {
        let first = try move("keep1", ["--keep-source-instance"])
        XCTAssertEqual(first.status, 0, first.stdout + first.stderr)
        let before = try await snapshot()
        XCTAssertNotNil(before.instances["cluster-b/keep1"])
        let again = try move("keep1", ["--keep-source-instance"])
        XCTAssertEqual(again.status, 1, again.stdout)
        XCTAssertEqual(try lastEvent(again)["reason"]?.stringValue, "refused")
        try await assertUntouched(before, "second run")
    }

    /// Every kind of refusal: an unknown node, overrides the destination's policy forbids, a
    /// name that is not a host name, a NIC link that would become a command-line option.
    func testEveryRefusalLeavesBothSidesUntouched() async throws {
        let cases: [(String, [String], String)] = [
            ("unknown node", ["--dest-instance-name", "db1-moved", "--dest-primary-node", "node-nowhere"], "Node 'node-nowhere' not known"),
            ("disk template override", ["--dest-instance-name", "db1-moved", "--dest-disk-template", "plain"], "gnt_move_overrides.disk_template"),
            ("hvparams override", ["--dest-instance-name", "db1-moved", "-H", "kernel_path=/boot/evil"], "gnt_move_overrides.hvparams"),
            ("NIC link option", ["--dest-instance-name", "db1-moved", "--net", "0:link=-evil"], "nics[0].link"),
            ("path in the name", ["--dest-instance-name", "../../escape"], "destination instance name '../../escape'"),
        ]
        let before = try await snapshot()
        for (label, extra, text) in cases {
            let result = try move("db1", extra)
            XCTAssertNotEqual(result.status, 0, label)
            let failed = try lastEvent(result)
            XCTAssertEqual(failed["event"]?.stringValue, "move-failed", label)
            XCTAssertTrue(failed["message"]?.stringValue?.contains(text) == true, "\(label): \(failed.serialized)")
            try await assertUntouched(before, label)
        }
    }

    /// A transfer that fails (here: the move's deadline passes mid-copy) is cleaned up to the
    /// state before the move: the half-copied destination goes, the source runs again.
    func testFailedTransferLeavesBothSidesAsBefore() async throws {
        try TestData.writeRandom(folder.file("big.img"), size: 24 << 20)
        try source.addInstance("big", disks: [folder.file("big.img")], extra: ["--running"])
        let before = try await snapshot()
        let result = try move("big", ["--bwlimit", "1M", "--timeout", "4"])
        XCTAssertEqual(result.status, 1, result.stdout)
        XCTAssertEqual(try lastEvent(result)["reason"]?.stringValue, "timeout")
        try await assertUntouched(before, "failed transfer")
    }

    /// The coordinator is killed right after each recorded state and the move is aborted: until
    /// the destination is finalized, everything returns to the state before the move; from then
    /// on the destination's verified copy is the instance and the source stays stopped.
    func testCoordinatorKilledAtEachStateThenAborted() async throws {
        let states = ["planned", "source-prepared", "destination-created", "destination-listening", "exporting", "disks-done", "finalized"]
        for (index, state) in states.enumerated() {
            let name = "vm\(index)"
            try TestData.writeMixed(folder.file("\(name).img"), size: 3 << 20, seed: UInt64(index + 20))
            let digest = try TestData.sha256(folder.file("\(name).img"))
            try source.addInstance(name, disks: [folder.file("\(name).img")], extra: ["--running"])
            let before = try await snapshot()
            var environment = ProcessInfo.processInfo.environment
            environment["GNT_MOVE_CRASH_AFTER"] = state
            let crashed = try move(name, environment: environment)
            XCTAssertEqual(crashed.status, 9, "\(state): \(crashed.stderr)")
            let started = try XCTUnwrap(try crashed.stdout.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
                .first { $0["event"]?.stringValue == "move-started" })
            let id = try XCTUnwrap(started["move_id"]?.stringValue)
            // Let a job the killed coordinator left behind reach its end or its listening state.
            usleep(700_000)
            let aborted = try gntMove("abort", id, "--state-dir", stateDir)
            XCTAssertEqual(aborted.status, 0, "\(state): \(aborted.stdout) \(aborted.stderr)")
            if state == "finalized" {
                XCTAssertTrue(waitFor(timeout: 30) { self.source.keyNames.isEmpty && self.destination.keyNames.isEmpty }, state)
                XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/\(name).disk0"), digest, state)
                let moved = try await destination.client().instance(name)
                let kept = try await source.client().instance(name)
                XCTAssertEqual(moved["status"]?.stringValue, "running", state)
                XCTAssertNotEqual(kept["status"]?.stringValue, "running", "\(state): the instance must not run twice")
                XCTAssertEqual(try TestData.sha256(folder.file("\(name).img")), digest, state)
                continue
            }
            // Jobs the abort canceled may still be winding down on the destination.
            XCTAssertTrue(waitFor(timeout: 30) {
                ((try? runProcess("/usr/bin/curl", ["-sk", "https://127.0.0.1:\(self.destination.port)/2/instances"]))?.stdout ?? "").contains("\"\(name)\"") == false
            }, state)
            try await assertUntouched(before, "killed after \(state), aborted")
        }
    }

    /// Hostile names and numbers sent straight to the agent: each is refused naming the field,
    /// nothing is created anywhere and the agent keeps answering.
    func testHostileCreateRequestsAreRefusedNamingTheField() async throws {
        let before = try await snapshot()
        let base: [String: JSONValue] = [
            "__version__": .int(1), "mode": .string("create"), "name": .string("fine1"), "disk_template": .string("file"),
            "disks": .array([.object(["size": .int(1)])]), "hypervisor": .string("kvm"), "start": .bool(false),
        ]
        let cases: [(String, JSONValue, String)] = [
            ("name", .string("../../escape"), "instance name '../../escape'"),
            ("name", .string("-rf"), "instance name '-rf'"),
            ("name", .string("a/b"), "instance name 'a/b'"),
            ("os", .string("../../x"), "os '../../x'"),
            ("nics", .array([.object(["link": .string("-x")])]), "nics[0].link '-x'"),
            ("nics", .array([.object(["mode": .string("bridged; rm -rf /")])]), "nics[0].mode"),
            ("tags", .array([.string("a b")]), "tags[0] 'a b'"),
            ("pnode", .string("-evil"), "pnode '-evil'"),
            ("disks", .array([.object(["size": .int64(Int64.max)]), .object(["size": .int64(Int64.max)])]), "disks[0].size"),
            ("disks", .array([.object(["size": .int64(1 << 40)]), .object(["size": .int64(1 << 40)])]), "Not enough disk space"),
            ("beparams", .object(["a=b": .int(1)]), "beparams: parameter name 'a=b'"),
        ]
        let client = try destination.client()
        for (field, value, text) in cases {
            var body = base
            body[field] = value
            for dryRun in [true, false] {
                do {
                    _ = try await client.pollJob(try await client.createInstance(.object(body), dryRun: dryRun))
                    XCTFail("\(field)=\(value.serialized) accepted")
                } catch let error as RAPIJobError {
                    XCTAssertTrue(error.message.contains(text), "\(field): \(error.message)")
                }
            }
        }
        let version = try await client.version()
        XCTAssertEqual(version, 2, "the agent still answers")
        try await assertUntouched(before, "hostile create requests")
    }

    /// One disk cannot be adopted by two instances, whatever path names it.
    func testADiskHeldByAnInstanceCannotBeAdoptedAgain() async throws {
        let before = try await snapshot()
        try FileManager.default.createSymbolicLink(atPath: folder.file("alias.raw"), withDestinationPath: folder.file("keep-me.raw"))
        defer { try? FileManager.default.removeItem(atPath: folder.file("alias.raw")) }
        for path in [folder.file("keep-me.raw"), folder.file("alias.raw"), folder.path + "/./keep-me.raw"] {
            let result = try gntMove("agent", "add-instance", "--dir", destination.dir, "thief", "--disk", path)
            XCTAssertEqual(result.status, 1, path)
            // A symlink is refused before anything else (a disk is never reached through one).
            XCTAssertTrue(result.stderr.contains("already belongs to instance 'db1'") || result.stderr.contains("is a symbolic link; refusing to follow it"),
                          result.stderr)
        }
        let twice = try gntMove("agent", "add-instance", "--dir", destination.dir, "twice", "--disk", folder.file("other.img"), "--disk", folder.file("other.img"))
        XCTAssertEqual(twice.status, 1)
        try FileManager.default.removeItem(atPath: folder.file("alias.raw"))
        try await assertUntouched(before, "adopt twice")
    }

    /// A disk is read only when the driver confirms the instance is off: a VM that ignores its
    /// stop command is not exported, and nothing changes on either side.
    func testRunningSourceThatDoesNotStopIsNotExported() async throws {
        let marks = folder.file("marks")
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
        let stubborn = try AgentHarness(cluster: "cluster-c", secret: folder.file("cds"), folder: folder, initArguments: [
            "--hypervisor-driver", "command", "--start-command", "touch \(marks)/%s", "--stop-command", "true",
            "--status-command", "test -e \(marks)/%s"])
        let configPath = stubborn.dir + "/agent.json"
        var config = try XCTUnwrap(try JSONValue(parsing: String(contentsOfFile: configPath, encoding: .utf8)).objectValue)
        config["stopTimeout"] = .int(2)
        try JSONValue.object(config).serialized.write(toFile: configPath, atomically: true, encoding: .utf8)
        try TestData.writeMixed(folder.file("vm-on.img"), size: 2 << 20, seed: 9)
        try stubborn.addInstance("vm-on", disks: [folder.file("vm-on.img")], extra: ["--running"])
        try stubborn.start()
        defer { stubborn.stop() }
        let info = try await stubborn.client().request(.GET, "/2/info")
        XCTAssertEqual(info["gnt_move_hypervisor_driver"]?.stringValue, "command")
        let before = try await SystemSnapshot.take([stubborn, destination], folder: folder)
        let result = try runProcess(Repository.gntMove, stubborn.moveArguments(to: destination, ["vm-on"], stateDir: stateDir) + ["--json"])
        XCTAssertEqual(result.status, 1, result.stdout)
        let failed = try lastEvent(result)
        XCTAssertTrue(failed["message"]?.stringValue?.contains("is still running 2 s after it was asked to stop") == true, failed.serialized)
        XCTAssertFalse(result.stdout.contains("\"disk-done\""), "no disk was sent")
        XCTAssertTrue(waitFor(timeout: 30) { stubborn.keyNames.isEmpty && self.destination.keyNames.isEmpty })
        try await SystemSnapshot.take([stubborn, destination], folder: folder).assertSame(as: before, "source that does not stop")
    }

    /// No space on the destination: refused before anything is created; nothing changes.
    func testNoSpaceOnTheDestinationRemovesNothing() async throws {
        // A sparse 4 TiB image, kept outside the snapshot's folder (hashing it would read 4 TiB).
        let elsewhere = TemporaryDirectory("safety-huge")
        let huge = elsewhere.file("huge.img")
        XCTAssertTrue(FileManager.default.createFile(atPath: huge, contents: nil))
        XCTAssertEqual(truncate(huge, 4 << 40), 0)
        try source.addInstance("huge", disks: [huge], extra: ["--running"])
        let before = try await snapshot()
        let result = try move("huge")
        XCTAssertEqual(result.status, 1, result.stdout)
        let failed = try lastEvent(result)
        XCTAssertEqual(failed["reason"]?.stringValue, "refused", failed.serialized)
        XCTAssertTrue(failed["message"]?.stringValue?.contains("Not enough disk space") == true, failed.serialized)
        try await assertUntouched(before, "no space")
    }

    /// An agent is killed (SIGKILL) and restarted at each state boundary of a move whose
    /// coordinator was killed there too; the move is then aborted: both sides are as before.
    func testAgentKilledAtEachStateThenAborted() async throws {
        let states = ["source-prepared", "destination-created", "destination-listening", "exporting"]
        var round = 0
        for (side, agent) in [("source", source!), ("destination", destination!)] {
            for state in states {
                round += 1
                let name = "ak\(round)"
                try TestData.writeMixed(folder.file("\(name).img"), size: 3 << 20, seed: UInt64(round + 40))
                try source.addInstance(name, disks: [folder.file("\(name).img")], extra: ["--running"])
                let before = try await snapshot()
                var environment = ProcessInfo.processInfo.environment
                environment["GNT_MOVE_CRASH_AFTER"] = state
                let crashed = try move(name, ["--bwlimit", "1M"], environment: environment)
                XCTAssertEqual(crashed.status, 9, "\(side) \(state): \(crashed.stderr)")
                let started = try XCTUnwrap(try crashed.stdout.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
                    .first { $0["event"]?.stringValue == "move-started" })
                let id = try XCTUnwrap(started["move_id"]?.stringValue)
                agent.stop()
                try agent.start()
                let aborted = try gntMove("abort", id, "--state-dir", stateDir)
                XCTAssertEqual(aborted.status, 0, "\(side) \(state): \(aborted.stdout) \(aborted.stderr)")
                try await assertUntouched(before, "\(side) agent killed after \(state), aborted")
            }
        }
    }

    /// A disk daemon is killed (SIGKILL) mid-transfer, on either side: the transfer continues
    /// and the move ends done, with identical data, exactly once, no key left, and nothing else changed.
    func testDiskDaemonKilledMidTransferThenTheMoveCompletes() async throws {
        for (index, side) in [source!, destination!].enumerated() {
            let name = "dk\(index)"
            try TestData.writeRandom(folder.file("\(name).img"), size: 12 << 20)
            let digest = try TestData.sha256(folder.file("\(name).img"))
            try source.addInstance(name, disks: [folder.file("\(name).img")], extra: ["--running"])
            let before = try await snapshot()
            let coordinator = try BackgroundProcess(Repository.gntMove, source.moveArguments(to: destination, [name], stateDir: stateDir)
                                                        + ["--json", "--bwlimit", "4M"])
            XCTAssertTrue(waitFor(timeout: 30) { coordinator.stdout.contains("\"export\"") }, coordinator.stdout)
            usleep(1_000_000)
            let killed = try runProcess("/usr/bin/pkill", ["-KILL", "-f", side.dir + "/import-export/"])
            XCTAssertEqual(killed.status, 0, "a daemon of \(side.cluster) was running")
            XCTAssertEqual(coordinator.wait(timeout: 120), 0, coordinator.stdout + coordinator.stderr)
            if side === source {
                // The exporter died; the importer still waits: the transfer continues from its
                // journal with the same key, in the same attempt.
                XCTAssertTrue(coordinator.stdout.contains("\"resume-transfer\""), coordinator.stdout)
                XCTAssertFalse(coordinator.stdout.contains("\"retry\""), coordinator.stdout)
            } else {
                // The importer died; the destination kept the half-imported instance and imports
                // again into it, in the same attempt.
                XCTAssertTrue(coordinator.stdout.contains("importing again into it, only the chunks that differ are sent"), coordinator.stdout)
                XCTAssertFalse(coordinator.stdout.contains("\"retry\""), coordinator.stdout)
            }
            XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/\(name).disk0"), digest)
            let list = try await destination.client().request(.GET, "/2/instances")
            XCTAssertEqual(list.arrayValue?.filter { $0["id"]?.stringValue == name }.count, 1, "exactly once")
            XCTAssertTrue(waitFor(timeout: 30) { self.source.keyNames.isEmpty && self.destination.keyNames.isEmpty })
            try await snapshot().excluding(name).assertSame(as: before.excluding(name), "daemon of \(side.cluster) killed")
        }
    }

    /// The destination's import fails after it created the instance (its OS import script
    /// fails): the destination removes what it made, the move gives up after its retries, and
    /// nothing that existed before changed.
    func testImportFailingAfterCreationLeavesBothSidesAsBefore() async throws {
        for (agent, importScript) in [(source!, "#!/bin/bash\ncat > \"$IMPORT_DEVICE\"\n"),
                                      (destination!, "#!/bin/bash\ncat > /dev/null\necho 'import failed on purpose' >&2\nexit 1\n")] {
            let os = agent.dir + "/os/failos"
            try FileManager.default.createDirectory(atPath: os, withIntermediateDirectories: true)
            for (script, text) in [("ganeti_api_version", "20\n"), ("export", "#!/bin/bash\ncat \"$EXPORT_DEVICE\"\n"), ("import", importScript)] {
                try text.write(toFile: os + "/" + script, atomically: true, encoding: .utf8)
                try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: os + "/" + script)
            }
        }
        try TestData.writeMixed(folder.file("osvm.img"), size: 2 << 20, seed: 11)
        try source.addInstance("osvm", disks: [folder.file("osvm.img")], extra: ["--running", "--os", "failos"])
        let before = try await snapshot()
        let result = try move("osvm")
        XCTAssertEqual(result.status, 1, result.stdout)
        XCTAssertTrue(result.stdout.contains("\"retry\""), "a failed transfer is tried again: \(result.stdout)")
        XCTAssertTrue(result.stdout.contains("\"destination-created\"") || result.stdout.contains("create-destination"), result.stdout)
        try await assertUntouched(before, "import failing after creation")
    }
}
