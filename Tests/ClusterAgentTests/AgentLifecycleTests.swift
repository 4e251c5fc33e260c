import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// Creating, starting, stopping and removing instances through RAPI, with the `command`
/// hypervisor driver running real commands.
final class AgentLifecycleTests: XCTestCase {
    /// An agent (not started) with the `command` driver: start touches `MARKS/NAME`, status tests
    /// for it, stop removes it; `configure` changes the rest. Returns the agent and MARKS.
    func commandDriverAgent(_ label: String, configure: (inout AgentConfig) -> Void = { _ in }) throws -> (AgentHarness, String) {
        let folder = TemporaryDirectory(label)
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        let agent = try AgentHarness(cluster: "cluster-c", secret: secret, folder: folder)
        let marks = folder.file("marks")
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
        let configPath = agent.dir + "/agent.json"
        var config = try JSONDecoder().decode(AgentConfig.self, from: Data(contentsOf: URL(fileURLWithPath: configPath)))
        config.hypervisorDriver = .command
        config.startCommand = "touch \(marks)/%s"
        config.stopCommand = "rm -f \(marks)/%s"
        config.statusCommand = "test -e \(marks)/%s"
        configure(&config)
        try JSONEncoder().encode(config).write(to: URL(fileURLWithPath: configPath))
        return (agent, marks)
    }

    func testCreateStartStopRemoveWithCommandDriver() async throws {
        let (agent, marks) = try commandDriverAgent("lifecycle")
        try agent.start()
        defer { agent.stop() }
        let client = try agent.client()
        let created = try await client.pollJob(try await client.createInstance(.object([
            "__version__": .int(1), "mode": .string("create"), "name": .string("blank1"), "disk_template": .string("file"),
            "disks": .array([.object(["size": .int(16)])]), "hypervisor": .string("kvm"), "start": .bool(true),
            "beparams": .object(["maxmem": .int(128)]),
        ])))
        XCTAssertEqual(created, .array([.string("node-cluster-c")]))
        XCTAssertTrue(FileManager.default.fileExists(atPath: marks + "/blank1"), "the start command ran")
        var instance = try await client.instance("blank1")
        XCTAssertEqual(instance["status"]?.stringValue, "running")
        XCTAssertEqual(instance["disk.sizes"], .array([.int(16)]))
        XCTAssertEqual(TestData.allocatedBytes(agent.dir + "/disks/blank1.disk0"), 0, "a new disk is sparse")

        _ = try await client.pollJob(try await client.shutdown("blank1"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: marks + "/blank1"), "the stop command ran")
        instance = try await client.instance("blank1")
        XCTAssertEqual(instance["status"]?.stringValue, "ADMIN_down")
        XCTAssertEqual(instance["admin_state"]?.stringValue, "down")

        _ = try await client.pollJob(try await client.startup("blank1"))
        instance = try await client.instance("blank1")
        XCTAssertEqual(instance["oper_state"], .bool(true))

        _ = try await client.pollJob(try await client.deleteInstance("blank1"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: agent.dir + "/disks/blank1.disk0"))
        let list = try await client.request(.GET, "/2/instances")
        XCTAssertEqual(list, .array([]))
        let jobs = try await client.request(.GET, "/2/jobs")
        XCTAssertEqual(jobs.arrayValue?.count, 4)
    }

    /// A stop command that hangs is stopped after `stopCommandTimeout` and fails the job, naming
    /// the command, the instance and the timeout; the instance stays recorded as up.
    func testStopCommandPastItsTimeoutFailsTheJob() async throws {
        let (agent, _) = try commandDriverAgent("lifecycle-timeout") { config in
            config.stopCommand = "sleep 30"
            config.stopCommandTimeout = 1
        }
        try agent.start()
        defer { agent.stop() }
        let client = try agent.client()
        _ = try await client.pollJob(try await client.createInstance(.object([
            "__version__": .int(1), "mode": .string("create"), "name": .string("vm1"), "disk_template": .string("file"),
            "disks": .array([.object(["size": .int(1)])]), "hypervisor": .string("kvm"), "start": .bool(true),
        ])))
        let started = Date()
        do {
            _ = try await client.pollJob(try await client.shutdown("vm1"))
            XCTFail("the shutdown job succeeded")
        } catch let error as RAPIJobError {
            XCTAssertEqual(error.errorClass, "OpExecError")
            XCTAssertEqual(error.message, "command 'sleep 30' for vm1 did not finish within 1 s; stopped it")
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 10)
        let instance = try await client.instance("vm1")
        XCTAssertEqual(instance["admin_state"]?.stringValue, "up")
        XCTAssertEqual(instance["status"]?.stringValue, "running")
    }
}
