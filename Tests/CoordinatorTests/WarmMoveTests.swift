import AgentTestSupport
import BlockStream
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// `gnt-move move --warm` between two real agents (the agents of `CoordinatorTests`): the disks
/// are copied while the source runs, then the source stops and only the chunks that changed
/// cross the wire.
extension CoordinatorTests {
    static let chunk = 1 << 20

    /// Writes `count` bytes of fresh random data at chunk `index` of `path` (the running VM writing).
    func scribble(_ path: String, chunk index: Int, count: Int = chunk) throws {
        let handle = try XCTUnwrap(FileHandle(forUpdatingAtPath: path))
        defer { try? handle.close() }
        try handle.seek(toOffset: UInt64(index * Self.chunk))
        try handle.write(contentsOf: Data((0..<count).map { _ in UInt8.random(in: 0...255) }))
    }

    func testWarmMoveCarriesWhatTheRunningSourceWroteDuringThePrecopy() async throws {
        let size = 48 * Self.chunk
        let image = folder.file("web.img")
        try TestData.writeRandom(image, size: size)
        try source.addInstance("web", disks: [image], extra: ["--running"])
        let move = try BackgroundProcess(Repository.gntMove, source.moveArguments(to: destination, ["web"], stateDir: stateDir)
            + ["--warm", "--json", "--bwlimit", "8M"])
        // Once a quarter of the disk is across, the "running" instance writes three chunks: one
        // already copied, one being copied about now, one not reached yet.
        let copy = destination.dir + "/disks/web.disk0"
        XCTAssertTrue(waitFor(timeout: 60) { TestData.allocatedBytes(copy) >= Int64(size / 4) }, "the pre-copy never got going: \(move.stdout)")
        let running = try await source.client().instance("web")
        XCTAssertEqual(running["oper_state"]?.boolValue, true, "the source runs during the pre-copy")
        try scribble(image, chunk: 1)
        try scribble(image, chunk: 12)
        try scribble(image, chunk: 46)
        let digest = try TestData.sha256(image)
        XCTAssertEqual(move.wait(timeout: 120), 0, move.stdout + move.stderr)

        let lines = try events(move.stdout)
        let steps = lines.compactMap { $0["step"]?.stringValue }
        XCTAssertEqual(steps.filter { $0 == "precopy" }.count, 1, move.stdout)
        let stop = try XCTUnwrap(steps.firstIndex(of: "stop-source"), move.stdout)
        XCTAssertLessThan(try XCTUnwrap(steps.firstIndex(of: "precopy-done")), stop, "the source stops only after the pre-copy")
        let precopy = try XCTUnwrap(lines.first { $0["step"]?.stringValue == "precopy-done" })
        XCTAssertEqual(precopy["changed_bytes"]?.integerValue, Int64(size), "the first pass sends the whole disk")
        // The final pass sends the chunks written after the pre-copy passed them, and nothing else.
        let changed = try diskDone(lines, "bytes changed")
        XCTAssertGreaterThanOrEqual(changed, Int64(Self.chunk), move.stdout)
        XCTAssertLessThanOrEqual(changed, Int64(3 * Self.chunk), move.stdout)
        let done = try XCTUnwrap(lines.last)
        XCTAssertEqual(done["event"]?.stringValue, "move-done", move.stdout)
        let downtime = try XCTUnwrap(done["downtime_seconds"]?.numberValue, move.stdout)
        XCTAssertLessThan(downtime, try XCTUnwrap(done["seconds"]?.numberValue) + 1)
        try SchemaValidation.validate(move.stdout.split(separator: "\n").map(String.init), schema: "run-event.schema.json")

        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/web.disk0"), digest, "the destination holds what the source held when it stopped")
        let moved = try await destination.client().instance("web")
        XCTAssertEqual(moved["oper_state"]?.boolValue, true, "started on the destination")
        do {
            _ = try await source.client().instance("web")
            XCTFail("the source must be removed")
        } catch let error as RAPIError { XCTAssertEqual(error.status, 404) }
        XCTAssertEqual(source.keyNames + destination.keyNames, [])
        let id = try XCTUnwrap(done["move_id"]?.stringValue)
        let status = try XCTUnwrap(try JSONValue(parsing: try gntMove("status", id, "--json", "--state-dir", stateDir).stdout).arrayValue?.first)
        XCTAssertEqual(status["warm"], .bool(true))
        XCTAssertEqual(status["precopy_changed"]?.arrayValue?.first?.integerValue, Int64(size))
        XCTAssertEqual(try XCTUnwrap(status["downtime_seconds"]?.numberValue), downtime, accuracy: 0.01)
    }

    /// The coordinator SIGKILLed right after each warm phase begins, then `resume`: the move ends
    /// done, the data identical, the instance created once, the source gone, no key left.
    func testCoordinatorCrashInEachWarmPhaseThenResume() async throws {
        for (index, state) in ["destination-listening", "precopying", "exporting", "disks-done"].enumerated() {
            let name = "warm\(index)"
            let image = folder.file("\(name).img")
            try TestData.writeMixed(image, size: 6 << 20, seed: UInt64(index + 30))
            let digest = try TestData.sha256(image)
            try source.addInstance(name, disks: [image], extra: ["--running"])
            var environment = ProcessInfo.processInfo.environment
            environment["GNT_MOVE_CRASH_AFTER"] = state
            let crashed = try runProcess(Repository.gntMove, source.moveArguments(to: destination, [name], stateDir: stateDir)
                + ["--warm", "--warm-passes", "2", "--json"], environment: environment)
            XCTAssertEqual(crashed.status, 9, "\(state): killed by SIGKILL (\(crashed.stderr))")
            let id = try XCTUnwrap(try events(crashed.stdout).first?["move_id"]?.stringValue)
            let resumed = try gntMove("resume", id, "--json", "--state-dir", stateDir)
            XCTAssertEqual(resumed.status, 0, "\(state): \(resumed.stdout) \(resumed.stderr)")
            let lines = try events(resumed.stdout)
            XCTAssertEqual(lines.last?["event"]?.stringValue, "move-done", "\(state): \(resumed.stdout)")
            XCTAssertFalse(lines.contains { $0["step"]?.stringValue == "retry" }, "\(state): no fresh attempt: \(resumed.stdout)")
            try await assertMovedOnce(name, digest: digest, state)
        }
    }

    /// Bad warm options are refused before anything is asked of either cluster.
    func testWarmOptionsAreChecked() async throws {
        let image = folder.file("db.img")
        try TestData.writeMixed(image, size: 2 << 20)
        try source.addInstance("db", disks: [image], extra: ["--running"])
        let before = try await SystemSnapshot.take([source, destination], folder: folder)
        let alone = try gntMove(arguments: source.moveArguments(to: destination, ["db"], stateDir: stateDir) + ["--warm-passes", "2"])
        XCTAssertEqual(alone.status, 64, alone.stderr)
        XCTAssertTrue(alone.stderr.contains("--warm-passes needs --warm"), alone.stderr)
        let many = try gntMove(arguments: source.moveArguments(to: destination, ["db"], stateDir: stateDir) + ["--warm", "--warm-passes", "11"])
        XCTAssertEqual(many.status, 64, many.stderr)
        XCTAssertTrue(many.stderr.contains("--warm-passes must be from 1 to 10"), many.stderr)
        try await SystemSnapshot.take([source, destination], folder: folder).assertSame(as: before, "bad warm options")
    }
}
