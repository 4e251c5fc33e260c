import AgentTestSupport
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// `agent init --data-ports LOW-HIGH` (`dataPortRange` in agent.json): import daemons listen on
/// a free port of the range, for firewalls; with every port taken the import fails naming the
/// range and leaves nothing behind.
final class DataPortRangeTests: XCTestCase {
    /// A socket listening on 127.0.0.1:`port`, as another service holding it would; nil when the
    /// port is taken already.
    final class Holder {
        let fd: Int32
        init?(port: Int) {
            fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = UInt16(port).bigEndian
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            guard bound == 0, listen(fd, 4) == 0 else {
                close(fd)
                return nil
            }
        }
        deinit { close(fd) }
    }

    /// `count` consecutive high ports that are free now, picked at random.
    static func freeRange(count: Int) throws -> ClosedRange<Int> {
        for _ in 0..<50 {
            let low = Int.random(in: 40_000...(60_000 - count))
            let holders = (low..<(low + count)).map { Holder(port: $0) }
            if holders.allSatisfy({ $0 != nil }) { return low...(low + count - 1) }
        }
        throw XCTSkip("no \(count) free consecutive ports found")
    }

    func makePair(_ label: String, range: ClosedRange<Int>) throws -> (TemporaryDirectory, AgentHarness, AgentHarness) {
        let folder = TemporaryDirectory(label)
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        let source = try AgentHarness(cluster: "cluster-a", secret: secret, folder: folder)
        let destination = try AgentHarness(cluster: "cluster-b", secret: secret, folder: folder,
                                           initArguments: ["--hypervisor-driver", "fake", "--data-ports", "\(range.lowerBound)-\(range.upperBound)"])
        try source.start()
        try destination.start()
        return (folder, source, destination)
    }

    /// The ports the destination published in its `remote-import` job log entries (the signed
    /// disk info `[host, port, magic, hmac, salt]` of each disk).
    func publishedPorts(_ agent: AgentHarness) async throws -> [Int] {
        let client = try agent.client()
        var ports: [Int] = []
        for job in try await client.request(.GET, "/2/jobs").arrayValue ?? [] {
            guard let id = job["id"]?.integerValue else { continue }
            let entries = try await client.job(id)["oplog"]?.arrayValue?.first?.arrayValue ?? []
            for entry in entries where entry.arrayValue?[2].stringValue == "remote-import" {
                for disk in entry.arrayValue?[3]["disks"]?.arrayValue ?? [] {
                    if let port = disk.arrayValue?[1].integerValue { ports.append(Int(port)) }
                }
            }
        }
        return ports
    }

    /// A two-disk instance moves to an agent with a four-port range: both importers listen
    /// inside it, each on its own port, and the disks arrive whole.
    func testImportersListenInsideTheRange() async throws {
        let range = try Self.freeRange(count: 4)
        let (folder, source, destination) = try makePair("data-ports", range: range)
        defer { source.stop(); destination.stop() }
        let config = try JSONValue(parsing: try String(contentsOfFile: destination.dir + "/agent.json", encoding: .utf8))
        XCTAssertEqual(config["dataPortRange"]?.stringValue, "\(range.lowerBound)-\(range.upperBound)")
        var digests: [String] = []
        var images: [String] = []
        for index in 0..<2 {
            let image = folder.file("pr\(index).img")
            try TestData.writeMixed(image, size: 3 << 20, seed: UInt64(40 + index))
            digests.append(try TestData.sha256(image))
            images.append(image)
        }
        try source.addInstance("pr", disks: images, extra: ["--running"])
        let result = try gntMove(arguments: source.moveArguments(to: destination, ["pr"], stateDir: folder.file("state")))
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        let ports = try await publishedPorts(destination)
        XCTAssertEqual(ports.count, 2, "one published port per disk")
        XCTAssertEqual(Set(ports).count, 2, "each disk on its own port: \(ports)")
        for port in ports { XCTAssertTrue(range.contains(port), "port \(port) outside \(range)") }
        for index in 0..<2 {
            XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/pr.disk\(index)"), digests[index])
        }
    }

    /// Every port of a one-port range is held by another listener: the import fails with an error
    /// that names the range, the destination keeps no instance and no key, and the source is as
    /// it was (running, its disk unchanged).
    func testEveryPortTakenFailsNamingTheRangeAndLeavesNothing() async throws {
        let range = try Self.freeRange(count: 1)
        let (folder, source, destination) = try makePair("data-ports-full", range: range)
        defer { source.stop(); destination.stop() }
        let holder = try XCTUnwrap(Holder(port: range.lowerBound), "the test's listener")
        defer { withExtendedLifetime(holder) {} }
        let image = folder.file("full.img")
        try TestData.writeMixed(image, size: 2 << 20, seed: 7)
        let digest = try TestData.sha256(image)
        try source.addInstance("full", disks: [image], extra: ["--running"])
        let result = try gntMove(arguments: source.moveArguments(to: destination, ["full"], stateDir: folder.file("state")) + ["--json"])
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        let failed = try XCTUnwrap(try result.stdout.split(separator: "\n").map { try JSONValue(parsing: String($0)) }.last)
        XCTAssertEqual(failed["event"]?.stringValue, "move-failed", result.stdout)
        let message = failed["message"]?.stringValue ?? ""
        XCTAssertTrue(message.contains("no free port in the data port range \(range.lowerBound)-\(range.upperBound)"), message)

        let instances = try await destination.client().request(.GET, "/2/instances")
        XCTAssertEqual(instances, .array([]), "no instance on the destination")
        XCTAssertEqual(((try? FileManager.default.contentsOfDirectory(atPath: destination.dir + "/disks")) ?? []), [], "no disk on the destination")
        XCTAssertTrue(waitFor(timeout: 30) { source.keyNames.isEmpty && destination.keyNames.isEmpty }, "\(source.keyNames + destination.keyNames)")
        let kept = try await source.client().instance("full")
        XCTAssertEqual(kept["status"]?.stringValue, "running", "the source was never stopped")
        XCTAssertEqual(try TestData.sha256(image), digest, "the source's disk is unchanged")
        let scrape = try MetricsScrape(destination)
        XCTAssertGreaterThanOrEqual(try scrape.value("gnt_move_transfer_failures_total", ["direction": "import", "reason": "listen"]) ?? 0, 1, scrape.body)
    }

    /// A range that is not one is refused by `agent init` (naming the option) and by an agent
    /// whose agent.json holds it (naming the key).
    func testMalformedRangesAreRefusedNamingTheKey() throws {
        let folder = TemporaryDirectory("data-ports-bad")
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        for bad in ["60100-60000", "0-10", "60000-70000", "sixty", "60000-"] {
            let result = try gntMove(arguments: ["agent", "init", "--dir", folder.file("bad-\(bad)"), "--cluster-name", "c", "--bind", "127.0.0.1",
                                                 "--node-name", "node-c", "--secret", secret, "--hypervisor-driver", "fake", "--data-ports", bad])
            XCTAssertEqual(result.status, 1, bad)
            XCTAssertTrue(result.stderr.contains("--data-ports"), "\(bad): \(result.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("bad-\(bad)") + "/agent.json"), bad)
        }
        let agent = try AgentHarness(cluster: "cluster-p", secret: secret, folder: folder)
        let path = agent.dir + "/agent.json"
        var config = try XCTUnwrap(try JSONValue(parsing: try String(contentsOfFile: path, encoding: .utf8)).objectValue)
        config["dataPortRange"] = .string("61000-60000")
        try FileManager.default.removeItem(atPath: path)
        try Data(JSONValue.object(config).serialized.utf8).write(to: URL(fileURLWithPath: path))
        let serve = try gntMove("agent", "serve", "--dir", agent.dir)
        XCTAssertEqual(serve.status, 1)
        XCTAssertTrue(serve.stderr.contains("'dataPortRange' is '61000-60000'"), serve.stderr)
        XCTAssertTrue(serve.stderr.contains("above its last"), serve.stderr)
    }
}
