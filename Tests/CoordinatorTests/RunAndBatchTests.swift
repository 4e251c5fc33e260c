import AgentTestSupport
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// `gnt-move run` (JSON on stdin, JSON-lines out) and `gnt-move batch`, checked against the
/// JSON Schemas that ship in schemas/.
final class RunAndBatchTests: XCTestCase {
    var folder: TemporaryDirectory!
    var source: AgentHarness!
    var destination: AgentHarness!

    override func setUpWithError() throws {
        let pair = try AgentPair("run")
        (folder, source, destination) = (pair.folder, pair.source, pair.destination)
    }

    override func tearDown() {
        source?.stop()
        destination?.stop()
    }

    func cluster(_ agent: AgentHarness) -> JSONValue {
        .object(["host": .string("127.0.0.1"), "port": .int(agent.port), "ca_file": .string(agent.dir + "/rapi.crt"),
                 "username": .string("gnt-move"), "password_file": .string(agent.dir + "/password")])
    }

    func request(_ moves: [JSONValue], parallel: Int = 1) -> JSONValue {
        .object(["source": cluster(source), "destination": cluster(destination), "moves": .array(moves),
                 "parallel": .int(parallel), "state_dir": .string(folder.file("state"))])
    }

    func validate(_ documents: [String], schema: String, file: StaticString = #filePath, line: UInt = #line) throws {
        try SchemaValidation.validate(documents, schema: schema, file: file, line: line)
    }

    func testRunMovesInParallelAndEventsMatchTheSchema() throws {
        var moves: [JSONValue] = []
        for name in ["a1", "a2"] {
            let image = folder.file("\(name).img")
            try TestData.writeMixed(image, size: 2 << 20, seed: UInt64(name.utf8.last ?? 0))
            try source.addInstance(name, disks: [image])
            moves.append(.object(["instance": .string(name), "dest_instance_name": .null, "iallocator": .string("gnt-move-most-free"),
                                  "compress": .string("zstd"), "keep_source_instance": .bool(false)]))
        }
        let body = request(moves, parallel: 2)
        try validate([body.serialized], schema: "run-request.schema.json")
        let result = try gntMove("run", stdin: body.serialized)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.filter { $0.contains("\"move-done\"") }.count, 2)
        try validate(lines, schema: "run-event.schema.json")
    }

    /// `"warm": true, "warm_passes": 2` in a `run` request: two pre-copy passes while the source
    /// runs, then the final one; `move-done` carries the downtime. A `warm_passes` out of range
    /// fails that move before anything is asked of a cluster (`reason: bad-request`).
    func testRunRequestsAWarmMove() throws {
        let image = folder.file("w1.img")
        try TestData.writeMixed(image, size: 6 << 20, seed: 5)
        let digest = try TestData.sha256(image)
        try source.addInstance("w1", disks: [image], extra: ["--running"])
        let body = request([.object(["instance": .string("w1"), "warm": .bool(true), "warm_passes": .int(2)])])
        try validate([body.serialized], schema: "run-request.schema.json")
        let result = try gntMove("run", stdin: body.serialized)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        try validate(lines, schema: "run-event.schema.json")
        let events = try lines.map { try JSONValue(parsing: $0) }
        XCTAssertEqual(events.filter { $0["step"]?.stringValue == "precopy" }.compactMap { $0["pass"]?.integerValue }, [1, 2], result.stdout)
        XCTAssertNotNil(events.last { $0["event"]?.stringValue == "move-done" }?["downtime_seconds"]?.numberValue, result.stdout)
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/w1.disk0"), digest)

        let bad = try gntMove("run", stdin: request([.object(["instance": .string("w2"), "warm": .bool(true), "warm_passes": .int(0)])]).serialized)
        XCTAssertEqual(bad.status, 1, bad.stdout)
        let refused = try JSONValue(parsing: String(bad.stdout.split(separator: "\n").last ?? ""))
        XCTAssertEqual(refused["reason"]?.stringValue, "bad-request", bad.stdout)
        XCTAssertEqual(refused["message"]?.stringValue, "warm passes: 0 is not from 1 to 10", bad.stdout)
    }

    func testProgressEventsCarryBytesTotalRateAndETA() throws {
        let image = folder.file("p.img")
        try TestData.writeRandom(image, size: 24 << 20)
        try source.addInstance("p", disks: [image])
        let result = try gntMove("run", stdin: request([.object(["instance": .string("p"), "bwlimit": .int(3 << 20)])]).serialized)
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        try validate(lines, schema: "run-event.schema.json")
        let progress = try lines.map { try JSONValue(parsing: $0) }.filter { $0["event"]?.stringValue == "progress" }
        let first = try XCTUnwrap(progress.first, result.stdout)
        XCTAssertEqual(first["disk"]?.integerValue, 0)
        XCTAssertEqual(first["total"]?.integerValue, 24 << 20)
        XCTAssertGreaterThan(first["bytes"]?.integerValue ?? 0, 0)
        XCTAssertNotNil(first["rate_mib_s"]?.numberValue)
        XCTAssertNotNil(first["percent"]?.integerValue)
        XCTAssertNotNil(first["eta_seconds"]?.integerValue)
    }

    func testBadRequestsExitTwo() throws {
        // (A CA file that cannot be read is not a malformed request: the move fails, with an
        // event; see CLIContractTests.)
        for text in ["{", #"{"moves": []}"#, #"{"source": {"host": "h"}, "moves": [{"instance": "x"}]}"#,
                     #"{"source": {"host": "h", "ca_file": "/etc/hostname"}, "moves": [{"instance": "x", "colour": "red"}]}"#] {
            let result = try gntMove("run", stdin: text)
            XCTAssertEqual(result.status, 2, text)
            try validate([String(result.stdout.split(separator: "\n").first ?? "")], schema: "run-event.schema.json")
        }
    }

    func testFailedMoveExitsOneWithAReason() throws {
        let result = try gntMove("run", stdin: request([.object(["instance": .string("ghost")])]).serialized)
        XCTAssertEqual(result.status, 1)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        try validate(lines, schema: "run-event.schema.json")
        XCTAssertTrue(lines.last?.contains("\"instance-not-found\"") == true, result.stdout)
    }

    /// A cron-style batch, interrupted by SIGKILL and run again: done moves are skipped, the
    /// interrupted one is resumed, and the summary says so.
    func testBatchInterruptedAndRerun() throws {
        for name in ["b1", "b2"] {
            let image = folder.file("\(name).img")
            try TestData.writeMixed(image, size: 2 << 20)
            try source.addInstance(name, disks: [image])
        }
        let batch = folder.write("batch.json", request([.object(["instance": .string("b1")]), .object(["instance": .string("b2")])]).serialized)
        var environment = ProcessInfo.processInfo.environment
        environment["GNT_MOVE_CRASH_AFTER"] = "destination-listening"
        let interrupted = try runProcess(Repository.gntMove, ["batch", batch], environment: environment)
        XCTAssertEqual(interrupted.status, 9, interrupted.stderr)
        let rerun = try gntMove("batch", batch)
        XCTAssertEqual(rerun.status, 0, rerun.stdout + rerun.stderr)
        XCTAssertTrue(rerun.stdout.contains("b1: done"), rerun.stdout)
        XCTAssertTrue(rerun.stdout.contains("b2: done"), rerun.stdout)
        let again = try gntMove("batch", "--quiet", batch)
        XCTAssertEqual(again.status, 0)
        XCTAssertEqual(again.stdout, "", "--quiet prints only failures")
        let verbose = try gntMove("batch", batch)
        XCTAssertTrue(verbose.stdout.contains("b1: done earlier"), verbose.stdout)
        XCTAssertEqual(source.keyNames + destination.keyNames, [])
    }

    func testOverlappingBatchesAreKeptApart() throws {
        let state = folder.file("state")
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let holder = try BackgroundProcess("/usr/bin/flock", [state + "/batch.lock", "sleep", "2"])
        defer { holder.kill(); holder.wait() }
        usleep(300_000)
        let batch = folder.write("batch.json", request([.object(["instance": .string("none")])]).serialized)
        let result = try gntMove("batch", batch)
        XCTAssertEqual(result.status, 2)
        XCTAssertTrue(result.stderr.contains("another batch holds"), result.stderr)
    }
}
