import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// Many small moves between two real agents: what the agents hold must not grow with the number
/// of transfers (descriptors, memory, database bytes per job).
final class AgentSoakTests: XCTestCase {
    var pair: AgentPair!

    override func setUpWithError() throws { pair = try AgentPair("soak") }

    override func tearDown() { pair?.stop() }

    /// What an agent process holds right now.
    struct Usage: CustomStringConvertible {
        let descriptors: Int
        let rssKiB: Int
        let databaseBytes: Int64
        /// What the descriptors point to, by kind (`socket`, `pipe`, `anon_inode:[eventfd]`, a path).
        let targets: [String: Int]

        let threads: Int

        var description: String { "\(descriptors) fds, \(threads) threads, \(rssKiB) KiB RSS, \(databaseBytes) database bytes" }
    }

    /// Descriptors are counted over one second and the fewest kept: connections the RAPI
    /// server is still closing come and go, a leak stays.
    func usage(_ agent: AgentHarness) throws -> Usage {
        let pid = try XCTUnwrap(agent.serverPID, "agent \(agent.cluster) is not running")
        var descriptors = Int.max
        var targets: [String: Int] = [:]
        for _ in 0..<10 {
            let entries = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd")
            if entries.count < descriptors {
                descriptors = entries.count
                targets = [:]
                for entry in entries {
                    let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\(entry)")) ?? "?"
                    targets[target.hasPrefix("socket:") ? "socket" : target.hasPrefix("pipe:") ? "pipe" : target, default: 0] += 1
                }
            }
            usleep(100_000)
        }
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let rssLine = try XCTUnwrap(status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") })
        let rss = try XCTUnwrap(Int(rssLine.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? ""))
        var bytes: Int64 = 0
        for suffix in ["", "-wal", "-shm"] {
            let attributes = try? FileManager.default.attributesOfItem(atPath: agent.dir + "/state.sqlite" + suffix)
            bytes += (attributes?[.size] as? NSNumber)?.int64Value ?? 0
        }
        let threads = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/task").count
        return Usage(descriptors: descriptors, rssKiB: rss, databaseBytes: bytes, targets: targets, threads: threads)
    }

    /// One whole move of `name` from `from` to `to`, driven over RAPI as `move-instance` drives it;
    /// the source instance is removed, so the next move can go back.
    func move(_ name: String, from: AgentHarness, to: AgentHarness) async throws {
        let src = try from.client()
        let dst = try to.client()
        let info = try await src.pollJob(try await src.instanceInfo(name))
        let spec = try XCTUnwrap(info[name])
        let prepared = try await src.pollJob(try await src.prepareExport(name))
        let body: JSONValue = .object([
            "__version__": .int(1), "mode": .string("remote-import"), "name": .string(name),
            "disk_template": spec["disk_template"] ?? .null,
            "disks": .array((spec["disks"]?.arrayValue ?? []).map { .object(["size": $0["size"] ?? .null, "mode": $0["mode"] ?? .null, "name": .string("None")]) }),
            "nics": .array([]), "os": spec["os"] ?? .null, "pnode": .null, "snode": .null, "iallocator": .string("gnt-move-most-free"),
            "start": .bool(false), "ip_check": .bool(false), "hypervisor": spec["hypervisor"] ?? .null,
            "source_handshake": prepared["handshake"] ?? .null, "source_x509_ca": prepared["x509_ca"] ?? .null,
            "source_instance_name": .string(name), "compress": .string("none"),
            "beparams": spec["be_instance"] ?? .object([:]), "hvparams": .object([:]), "osparams": .object([:]),
            "opportunistic_locking": .bool(false), "tags": .array([]), "wait_for_sync": .bool(false),
            "gnt_move_signed_spec": prepared["gnt_move_signed_spec"] ?? .null,
        ])
        let createJob = try await dst.createInstance(body)
        async let created: JSONValue = dst.pollJob(createJob)
        let handshake = try await to.awaitRemoteImport(createJob)
        guard let handshake else {
            _ = try await created
            return XCTFail("the import failed before listening")
        }
        let exportJob = try await src.exportInstance(name, body: .object([
            "mode": .string("remote"), "destination": handshake["disks"] ?? .null, "shutdown": .bool(true),
            "remove_instance": .bool(true), "x509_key_name": prepared["x509_key_name"] ?? .null,
            "destination_x509_ca": handshake["x509_ca"] ?? .null, "compress": .string("none"),
        ]))
        let exported = try await src.pollJob(exportJob)
        _ = try await created
        XCTAssertEqual(exported.arrayValue?.first, .bool(true))
    }

    /// 150 disk transfers (15 moves of a ten-disk instance of 1 MiB disks back and forth, each
    /// move one import and one export daemon per disk). After a warm-up of 10 transfers,
    /// each agent's open descriptors stay within ±2, its RSS within 40 MiB, and the database
    /// grows by a bounded and steady amount per job.
    func testManySmallMovesLeakNothing() async throws {
        let (a, b) = (pair.source, pair.destination)
        let disks = try (0..<10).map { index -> String in
            let image = pair.folder.file("soak\(index).img")
            try TestData.writeMixed(image, size: 1 << 20, seed: UInt64(40 + index))
            return image
        }
        let digests = try disks.map { try TestData.sha256($0) }
        try a.addInstance("soak", disks: disks)

        let moves = 15, warmUp = 1
        var baseline: (a: Usage, b: Usage)?
        var middle: (a: Usage, b: Usage)?
        let started = Date()
        var holder = a
        for round in 0..<moves {
            let (from, to) = round % 2 == 0 ? (a, b) : (b, a)
            try await move("soak", from: from, to: to)
            holder = to
            if round + 1 == warmUp { baseline = (try usage(a), try usage(b)) }
            if round + 1 == warmUp + (moves - warmUp) / 2 { middle = (try usage(a), try usage(b)) }
        }
        let elapsed = Date().timeIntervalSince(started)
        for (index, digest) in digests.enumerated() {
            XCTAssertEqual(try TestData.sha256(holder.dir + "/disks/soak.disk\(index)"), digest, "disk \(index) survived \(moves) moves")
        }
        let end = (a: try usage(a), b: try usage(b))
        let first = try XCTUnwrap(baseline), mid = try XCTUnwrap(middle)
        print("soak: \(moves * disks.count) transfers in \(String(format: "%.1f", elapsed)) s; "
              + "source \(first.a) -> \(end.a); destination \(first.b) -> \(end.b)")

        for (label, before, halfway, after) in [("source", first.a, mid.a, end.a), ("destination", first.b, mid.b, end.b)] {
            XCTAssertLessThanOrEqual(abs(after.descriptors - before.descriptors), 2,
                                     "\(label) agent: open descriptors went from \(before.descriptors) to \(after.descriptors): \(before.targets) -> \(after.targets)")
            XCTAssertLessThan(after.rssKiB - before.rssKiB, 40 * 1024, "\(label) agent: RSS went from \(before.rssKiB) to \(after.rssKiB) KiB")
            // Jobs stay in the database with their logs, so it grows; but by the same amount per
            // job in the second half as in the first, and by little.
            let movesPerHalf = Int64((moves - warmUp) / 2)
            let firstHalf = max(0, halfway.databaseBytes - before.databaseBytes)
            let secondHalf = max(0, after.databaseBytes - halfway.databaseBytes)
            XCTAssertLessThanOrEqual(secondHalf, firstHalf * 2 + 256 * 1024,
                                     "\(label) agent: the database grew \(firstHalf) bytes, then \(secondHalf) bytes over as many jobs")
            XCTAssertLessThan(secondHalf / movesPerHalf, 64 * 1024, "\(label) agent: \(secondHalf / movesPerHalf) database bytes per move")
        }
        XCTAssertLessThan(elapsed, 120, "the soak must stay short")
    }
}
