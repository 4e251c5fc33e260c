import AgentTestSupport
import BlockStream
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// `GET /metrics` on real agents over TLS: scraped during and after a real move between two
/// agents, refused without credentials, and always in Prometheus' text format.
final class AgentMetricsTests: XCTestCase {
    static let received = "gnt_move_disk_received_bytes_total"
    static let sent = "gnt_move_disk_sent_bytes_total"
    static let running = "gnt_move_transfers_running"
    static let jobs = "gnt_move_jobs_total"
    static let requests = "gnt_move_rapi_requests_total"
    static let keys = "gnt_move_x509_keys"
    static let rate = "gnt_move_disk_rate_bytes_per_second"

    /// A move paced at 4 MB/s is scraped on both agents while its disk is on the wire and after:
    /// the byte counters grow between two scrapes, both ends count a running transfer and hold a
    /// key, and afterwards nothing runs, no key is held, the jobs are counted by kind and
    /// outcome and the requests by route template.
    func testCountersFollowARealMove() async throws {
        let pair = try AgentPair("metrics-move")
        defer { pair.stop() }
        let (source, destination) = (pair.source, pair.destination)
        let size = 40 << 20
        let image = pair.folder.file("mx.img")
        try TestData.writeRandom(image, size: size)
        try source.addInstance("mx", disks: [image], extra: ["--running"])
        let disk = ["instance": "mx", "disk": "0"]

        let before = try MetricsScrape(destination)
        XCTAssertEqual(before.status, 200, before.body)
        XCTAssertEqual(try before.value(Self.running, ["direction": "import"]), 0, before.body)
        XCTAssertNil(try before.value(Self.received, disk), "no bytes before the move")

        let move = try BackgroundProcess(Repository.gntMove, source.moveArguments(to: destination, ["mx"], stateDir: pair.folder.file("state"))
                                         + ["--json", "--bwlimit", "4M"])
        // The destination follows its importer once it listens; the source its exporter once the
        // coordinator stopped the instance and started the export.
        func runningCount(_ agent: AgentHarness, _ direction: String) -> Double {
            (try? MetricsScrape(agent).value(Self.running, ["direction": direction])) ?? 0
        }
        XCTAssertTrue(waitFor(timeout: 60) { runningCount(destination, "import") >= 1 && runningCount(source, "export") >= 1 },
                      "the agents never counted a running import and export: \(move.stdout)")
        let firstSource = try MetricsScrape(source), firstDestination = try MetricsScrape(destination)
        XCTAssertGreaterThanOrEqual(try firstSource.value(Self.running, ["direction": "export"]) ?? 0, 1, firstSource.body)
        XCTAssertGreaterThanOrEqual(try firstDestination.value(Self.running, ["direction": "import"]) ?? 0, 1, firstDestination.body)
        XCTAssertGreaterThanOrEqual(try firstSource.value(Self.keys, ["store": "export"]) ?? 0, 1, "the source holds the move's key")
        XCTAssertGreaterThanOrEqual(try firstDestination.value(Self.keys, ["store": "import"]) ?? 0, 1, "the destination holds its import key")
        let sentAtFirst = try firstSource.value(Self.sent, disk) ?? 0
        let receivedAtFirst = try firstDestination.value(Self.received, disk) ?? 0

        // Daemons write their progress every 5 s; the agents read it every second.
        var later: (source: MetricsScrape, destination: MetricsScrape)?
        let grew = waitFor(timeout: 30) {
            guard let fromSource = try? MetricsScrape(source), let fromDestination = try? MetricsScrape(destination),
                  let sent = try? fromSource.value(Self.sent, disk), let received = try? fromDestination.value(Self.received, disk),
                  sent > sentAtFirst, received > receivedAtFirst else { return false }
            later = (fromSource, fromDestination)
            return true
        }
        XCTAssertTrue(grew, "the byte counters did not grow during the transfer: \(move.stdout)")
        let during = try XCTUnwrap(later)
        XCTAssertLessThan(try during.destination.value(Self.received, disk) ?? 0, Double(size), "scraped while the disk was still on the wire")
        XCTAssertGreaterThanOrEqual(try during.source.value(Self.running, ["direction": "export"]) ?? 0, 1, during.source.body)
        XCTAssertGreaterThanOrEqual(try during.destination.value(Self.running, ["direction": "import"]) ?? 0, 1, during.destination.body)
        let rates = [try during.source.value(Self.rate, disk.merging(["direction": "export"]) { $1 }) ?? 0,
                     try during.destination.value(Self.rate, disk.merging(["direction": "import"]) { $1 }) ?? 0]
        XCTAssertGreaterThan(rates.max() ?? 0, 0, "a rate while the disk moves: \(rates)")
        XCTAssertLessThan(rates.max() ?? 0, 4e6 * 1.5, "paced at 4 MB/s: \(rates)")

        XCTAssertEqual(move.wait(timeout: 120), 0, move.stdout + move.stderr)
        let afterSource = try MetricsScrape(source), afterDestination = try MetricsScrape(destination)
        XCTAssertEqual(try afterSource.value(Self.running, ["direction": "export"]), 0, afterSource.body)
        XCTAssertEqual(try afterDestination.value(Self.running, ["direction": "import"]), 0, afterDestination.body)
        XCTAssertEqual(try afterSource.value(Self.sent, disk), Double(size), "every byte of the disk was sent")
        XCTAssertEqual(try afterDestination.value(Self.received, disk), Double(size), "every byte of the disk was received")
        XCTAssertEqual(try afterDestination.value(Self.rate, disk.merging(["direction": "import"]) { $1 }), 0, "no rate once it ended")
        XCTAssertEqual(try afterSource.value(Self.keys, ["store": "export"]), 0, "the source's key is gone")
        XCTAssertEqual(try afterDestination.value(Self.keys, ["store": "import"]), 0, "the destination's key is gone")
        for (kind, agent) in [("OP_BACKUP_PREPARE", afterSource), ("OP_BACKUP_EXPORT", afterSource), ("OP_INSTANCE_REMOVE", afterSource),
                              ("OP_INSTANCE_CREATE", afterDestination)] {
            XCTAssertGreaterThanOrEqual(try agent.value(Self.jobs, ["kind": kind, "outcome": "success"]) ?? 0, 1, "\(kind): \(agent.body)")
        }
        XCTAssertNil(try afterDestination.value(Self.jobs, ["outcome": "error"]), afterDestination.body)
        XCTAssertEqual(try afterSource.value("gnt_move_transfer_failures_total", ["direction": "export"]), 0, afterSource.body)
        XCTAssertEqual(try afterDestination.value("gnt_move_transfer_failures_total", ["direction": "import"]), 0, afterDestination.body)
        // Requests by route template: the instance's name is never a label value.
        XCTAssertGreaterThanOrEqual(try afterSource.value(Self.requests, ["route": "/2/instances/{name}/export", "method": "PUT", "status": "200"]) ?? 0, 1,
                                    afterSource.body)
        XCTAssertGreaterThanOrEqual(try afterDestination.value(Self.requests, ["route": "/2/instances", "method": "POST", "status": "200"]) ?? 0, 1,
                                    afterDestination.body)
        XCTAssertGreaterThanOrEqual(try afterDestination.value(Self.requests, ["route": "/2/jobs/{id}", "method": "GET", "status": "200"]) ?? 0, 1,
                                    afterDestination.body)
        for scrape in [afterSource, afterDestination] {
            let routes = try scrape.samples().filter { $0.name == Self.requests }.compactMap { $0.labels["route"] }
            XCTAssertFalse(routes.contains { $0.contains("mx") || $0.range(of: #"/jobs/[0-9]"#, options: .regularExpression) != nil }, "\(routes)")
        }
    }

    /// The data connection of a paced move is reset mid-transfer and the disk continues from the
    /// importer's journal in the same daemons: afterwards each counter holds the disk once and
    /// nothing runs. (The rule for progress that goes back is tested alone in
    /// AgentMetricsCountingTests: this cut does not always land where the reports show it.)
    func testACutTransferIsCountedOnce() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ss") else { throw XCTSkip("ss (iproute2) is not installed") }
        let pair = try AgentPair("metrics-cut")
        defer { pair.stop() }
        let (source, destination) = (pair.source, pair.destination)
        let size = 32 << 20
        let image = pair.folder.file("cut.img")
        try TestData.writeRandom(image, size: size)
        try source.addInstance("cut", disks: [image], extra: ["--running"])
        let move = try BackgroundProcess(Repository.gntMove, source.moveArguments(to: destination, ["cut"], stateDir: pair.folder.file("state"))
                                         + ["--json", "--bwlimit", "8M"])
        var port: Int?
        XCTAssertTrue(waitFor(timeout: 60) {
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: destination.dir + "/import-export")) ?? []
            port = folders.filter { $0.hasPrefix("import-disk0-") }.compactMap {
                let status = try? ImportExportStatus.load(path: destination.dir + "/import-export/\($0)/status")
                return status?.connected == true ? status?.listen_port : nil
            }.first
            return port != nil
        }, move.stdout)
        Thread.sleep(forTimeInterval: 2.5)
        XCTAssertGreaterThan(try resetTCPConnections(port: try XCTUnwrap(port)), 0, "nothing to cut")
        XCTAssertEqual(move.wait(timeout: 120), 0, move.stdout + move.stderr)
        XCTAssertTrue(move.stdout.contains("resume-transfer"), "the disk continued: \(move.stdout)")
        let disk = ["instance": "cut", "disk": "0"]
        let afterSource = try MetricsScrape(source), afterDestination = try MetricsScrape(destination)
        XCTAssertEqual(try afterSource.value(Self.sent, disk), Double(size), afterSource.body)
        XCTAssertEqual(try afterDestination.value(Self.received, disk), Double(size), afterDestination.body)
        XCTAssertEqual(try afterSource.value(Self.running, ["direction": "export"]), 0)
        XCTAssertEqual(try afterDestination.value(Self.running, ["direction": "import"]), 0)
    }

    /// Reads are open on the RAPI, the metrics are not: no credentials or a wrong password get a
    /// 401 and not one metric; a read-only user may scrape.
    func testScrapeNeedsAUser() throws {
        let agent = try AgentHarness.startedWithOneInstance("metrics-auth", cluster: "cluster-m")
        defer { agent.stop() }
        for (user, password) in [(nil, nil), ("gnt-move", "wrong"), ("nobody", "x")] as [(String?, String?)] {
            let refused = try MetricsScrape(agent, user: user, password: password)
            XCTAssertEqual(refused.status, 401, "\(user ?? "-"): \(refused.body)")
            XCTAssertFalse(refused.body.contains("gnt_move_"), refused.body)
        }
        let open = try runProcess("/usr/bin/curl", ["-sk", "-o", "/dev/null", "-w", "%{http_code}", "https://\(agent.bind):\(agent.port)/2/info"])
        XCTAssertEqual(open.stdout, "200", "other reads stay open")
        let users = try FileHandle(forWritingTo: URL(fileURLWithPath: agent.dir + "/users"))
        try users.seekToEnd()
        try users.write(contentsOf: Data("reader reader-secret read\n".utf8))
        try users.close()
        let reader = try MetricsScrape(agent, user: "reader", password: "reader-secret")
        XCTAssertEqual(reader.status, 200, reader.body)
        XCTAssertTrue(reader.contentType.hasPrefix("text/plain; version=0.0.4"), reader.contentType)
        // The refusals were counted, under the route's template.
        XCTAssertGreaterThanOrEqual(try reader.value(Self.requests, ["route": "/metrics", "status": "401"]) ?? 0, 3, reader.body)
    }

    /// Every line of a scrape is Prometheus' text format: `# HELP`/`# TYPE` comments, and samples
    /// `name{labels} value` whose names start with gnt_move_; unknown paths count as `unmatched`
    /// and a path with an instance name counts under its template.
    func testScrapeIsPrometheusTextFormat() async throws {
        let agent = try AgentHarness.startedWithOneInstance("metrics-format", cluster: "cluster-f")
        defer { agent.stop() }
        let client = try agent.client()
        _ = try await client.request(.GET, "/2/info")
        _ = try await client.pollJob(try await client.shutdown("vm1"))
        for path in ["/2/instances/ghost-instance", "/no/such/path/42"] {
            _ = try runProcess("/usr/bin/curl", ["-sk", "-o", "/dev/null", "https://\(agent.bind):\(agent.port)\(path)"])
        }
        let scrape = try MetricsScrape(agent)
        XCTAssertEqual(scrape.status, 200)
        XCTAssertEqual(scrape.contentType, "text/plain; version=0.0.4")
        let samples = try scrape.samples()
        XCTAssertFalse(samples.isEmpty)
        for line in scrape.body.split(separator: "\n") where !line.hasPrefix("#") {
            XCTAssertTrue(line.hasPrefix("gnt_move_"), String(line))
        }
        let typed = Set(scrape.body.split(separator: "\n").filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
        let helped = Set(scrape.body.split(separator: "\n").filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
        XCTAssertEqual(typed, helped, "every metric has its help")
        XCTAssertEqual(Set(samples.map(\.name)).subtracting(typed.map(String.init)), [], "every sample's metric has a # TYPE")
        XCTAssertEqual(try scrape.value(Self.jobs, ["kind": "OP_INSTANCE_SHUTDOWN", "outcome": "success"]), 1, scrape.body)
        XCTAssertGreaterThanOrEqual(try scrape.value(Self.requests, ["route": "/2/instances/{name}", "method": "GET", "status": "404"]) ?? 0, 1, scrape.body)
        XCTAssertGreaterThanOrEqual(try scrape.value(Self.requests, ["route": "unmatched", "status": "404"]) ?? 0, 1, scrape.body)
        XCTAssertFalse(scrape.body.contains("ghost-instance") || scrape.body.contains("/no/such"), "raw paths are never labels")
        for reason in ["listen", "connect", "handshake", "integrity", "storage", "link", "canceled", "other"] {
            XCTAssertEqual(try scrape.value("gnt_move_transfer_failures_total", ["direction": "import", "reason": reason]), 0, reason)
        }
        XCTAssertThrowsError(try MetricsScrape.parse("gnt_move_x{a=\"1\"} not-a-number\n"))
        XCTAssertThrowsError(try MetricsScrape.parse("other_metric 1\n"))
        XCTAssertThrowsError(try MetricsScrape.parse("gnt_move_x{a=1} 1\n"))
    }
}
