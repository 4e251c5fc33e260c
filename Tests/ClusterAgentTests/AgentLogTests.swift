import AgentTestSupport
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// The agent's log on stderr (what journald keeps): a line per request with method, path, user,
/// status and time; an audit line for each job a write request starts; every state change of a
/// job. A password never appears in it.
final class AgentLogTests: XCTestCase {
    func testRequestsJobsAndWritesAreLogged() async throws {
        let folder = TemporaryDirectory("agent-log")
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        let agent = try AgentHarness(cluster: "cluster-log", secret: secret, folder: folder)
        try agent.start()
        defer { agent.stop() }
        let image = folder.file("web1.img")
        try TestData.writeMixed(image, size: 1 << 20)
        try agent.addInstance("web1", disks: [image], extra: ["--running"])

        _ = try await agent.client(user: nil).request(.GET, "/2/instances")
        let job = try await agent.client().request(.PUT, "/2/instances/web1/shutdown")
        let id = try XCTUnwrap(job.integerValue)
        let intruder = try agent.client(user: "intruder", password: "guess-me")
        do {
            _ = try await intruder.request(.DELETE, "/2/instances/web1")
            XCTFail("a wrong password was accepted")
        } catch {}

        XCTAssertTrue(waitFor(timeout: 10) { agent.serverLog.contains("job \(id) INSTANCE_SHUTDOWN(web1): success") }, agent.serverLog)
        let log = agent.serverLog
        let lines = log.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines.contains { $0.hasPrefix("rapi: GET /2/instances user=- status=200 time=") && $0.hasSuffix("s") }, log)
        XCTAssertTrue(lines.contains { $0.hasPrefix("rapi: PUT /2/instances/web1/shutdown user=gnt-move status=200 time=") }, log)
        XCTAssertTrue(lines.contains("audit: gnt-move submitted job \(id): INSTANCE_SHUTDOWN(web1)"), log)
        XCTAssertTrue(lines.contains("job \(id) INSTANCE_SHUTDOWN(web1): running"), log)
        XCTAssertTrue(lines.contains { $0.hasPrefix("rapi: DELETE /2/instances/web1 user=intruder status=401 time=") }, log)
        XCTAssertFalse(lines.contains { $0.hasPrefix("audit: intruder") }, "a refused request starts nothing: \(log)")
        XCTAssertFalse(log.contains("guess-me") || log.contains(agent.password), "no password in the log")
        let after = try await agent.client().instance("web1")
        XCTAssertEqual(after["name"]?.stringValue, "web1", "the refused DELETE removed nothing")
    }
}
