import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// The coordinator's command-line contract, through the real executable: files that cannot be
/// read, state directories that do not exist, move-instance's spelling of options, `--version`.
final class CLIContractTests: XCTestCase {
    func events(_ stdout: String) throws -> [JSONValue] {
        try stdout.split(separator: "\n").map { try JSONValue(parsing: String($0)) }
    }

    func testUnreadableCAOrPasswordFileFailsTheMoveWithAnEvent() throws {
        let agent = try AgentHarness.alone("contract", cluster: "cluster-a")
        let state = agent.folder.file("state")
        let missing = agent.folder.file("missing.pem")
        let folderAsFile = agent.folder.path
        let cases: [(String, String, String)] = [
            ("--src-ca-file", missing, "the source cluster's CA file \(missing) does not exist"),
            ("--dest-password-file", agent.folder.file("nothing"), "the destination cluster's password file \(agent.folder.file("nothing"))"),
            ("--src-password-file", folderAsFile, "the source cluster's password file \(folderAsFile)"),
        ]
        for (option, path, message) in cases {
            var arguments = agent.moveArguments(to: agent, ["vm1"], stateDir: state)
            guard let at = arguments.firstIndex(of: option) else { return XCTFail(option) }
            arguments[at + 1] = path
            let human = try gntMove(arguments: arguments)
            XCTAssertEqual(human.status, 1, "\(option): \(human.stdout)\(human.stderr)")
            let lines = human.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, human.stderr)
            XCTAssertTrue(lines.first?.contains(message) == true, human.stderr)

            let json = try gntMove(arguments: arguments + ["--json"])
            XCTAssertEqual(json.status, 1)
            let failed = try XCTUnwrap(try events(json.stdout).last, json.stdout)
            XCTAssertEqual(failed["event"]?.stringValue, "move-failed")
            XCTAssertEqual(failed["reason"]?.stringValue, "bad-request")
            try SchemaValidation.validate(json.stdout.split(separator: "\n").map(String.init), schema: "run-event.schema.json")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: state + "/moves.sqlite") && ((try? MoveStore(directory: state).moves().count) ?? 0) > 0,
                       "nothing is recorded for a move that could not start")

        // `run`: the same, a move-failed event and exit 1 (the request itself is well formed).
        let request: JSONValue = .object([
            "source": .object(["host": .string("127.0.0.1"), "port": .int(agent.port), "ca_file": .string(missing)]),
            "moves": .array([.object(["instance": .string("vm1")])]), "state_dir": .string(state),
        ])
        let run = try gntMove("run", stdin: request.serialized)
        XCTAssertEqual(run.status, 1, run.stdout + run.stderr)
        let failed = try XCTUnwrap(try events(run.stdout).last)
        XCTAssertEqual(failed["event"]?.stringValue, "move-failed")
        XCTAssertTrue(failed["message"]?.stringValue?.contains(missing) == true, failed.serialized)
        try SchemaValidation.validate(run.stdout.split(separator: "\n").map(String.init), schema: "run-event.schema.json")
    }

    func testStateCommandsOnAMissingStateDirectoryAreErrors() throws {
        let folder = TemporaryDirectory("contract")
        let state = folder.file("no-such-state")
        for arguments in [["status"], ["status", "--json"], ["resume", "mv-00000000"], ["abort", "mv-00000000"], ["cleanup"]] {
            let result = try gntMove(arguments: arguments + ["--state-dir", state])
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.stdout)\(result.stderr)")
            XCTAssertTrue(result.stderr.contains("no moves recorded in \(state)"), result.stderr)
            XCTAssertFalse(FileManager.default.fileExists(atPath: state), "\(arguments) created \(state)")
        }
    }

    func testMoveInstanceSpellingAndVersion() throws {
        let help = try gntMove("move", "--help")
        XCTAssertTrue(help.stdout.contains("-I, --iallocator"), help.stdout)
        // -I is accepted where move-instance accepts it (it fails later, on the missing CA file).
        let parsed = try gntMove("move", "a", "b", "vm1", "--src-ca-file", "/nonexistent", "-I", "hail", "--state-dir",
                                 TemporaryDirectory("contract").file("state"))
        XCTAssertEqual(parsed.status, 1, parsed.stderr)
        XCTAssertFalse(parsed.stderr.contains("Unknown option"), parsed.stderr)
        let version = try gntMove("--version")
        XCTAssertEqual(version.status, 0)
        XCTAssertEqual(version.stdout.trimmingCharacters(in: .whitespacesAndNewlines), "gnt-move \(GntMoveVersion.current)")
    }

    func testAgentInitWithARelativeDirectoryAndOnlyAPasswordFile() throws {
        let folder = TemporaryDirectory("contract")
        let passwordFile = folder.write("pw", "s3cret-pass\n")
        let result = try runProcess(Repository.gntMove, ["agent", "init", "--dir", "relative-agent", "--cluster-name", "c1",
                                                         "--hypervisor-driver", "fake", "--password-file", passwordFile],
                                    currentDirectory: folder.path)
        XCTAssertEqual(result.status, 0, result.stderr)
        let config = try JSONValue(parsing: try String(contentsOfFile: folder.file("relative-agent/agent.json"), encoding: .utf8))
        for path in config["osSearchPath"]?.arrayValue ?? [] {
            XCTAssertTrue(path.stringValue?.hasPrefix(folder.path) == true, "agent.json holds a relative path: \(path)")
        }
        let users = try String(contentsOfFile: folder.file("relative-agent/users"), encoding: .utf8)
        XCTAssertTrue(users.contains(UsersFile.line(user: "gnt-move", password: "s3cret-pass", options: ["write"])),
                      "the password file sets the default user's password: \(users)")
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("relative-agent/password")), "no generated password beside it")
    }

    func testMalformedRunAndBatchInputSaysWhatIsWrong() throws {
        let notJSON = try gntMove("run", stdin: "not json")
        XCTAssertEqual(notJSON.status, 2)
        XCTAssertTrue(notJSON.stderr.contains("the request on stdin is not JSON"), notJSON.stderr)
        let empty = try gntMove("run", stdin: "")
        XCTAssertEqual(empty.status, 2)
        XCTAssertTrue(empty.stderr.contains("no request on stdin"), empty.stderr)
        let folder = TemporaryDirectory("contract")
        let missing = folder.file("nofile.json")
        let batch = try gntMove("batch", missing, "--state-dir", folder.file("state"))
        XCTAssertEqual(batch.status, 2)
        XCTAssertEqual(batch.stderr.trimmingCharacters(in: .whitespacesAndNewlines), "gnt-move: \(missing): batch file does not exist")
    }

    /// A cluster that cannot be reached is described in an operator's terms: the certificate that
    /// does not match the CA file, the port where nothing listens, the name that does not resolve;
    /// never a TLS library's error code or source path.
    func testUnreachableClustersAreWordedForAnOperator() throws {
        let agent = try AgentHarness.startedWithOneInstance("contract", cluster: "cluster-a")
        defer { agent.stop() }
        let other = try AgentHarness.alone("contract-other", cluster: "cluster-b")
        let closedPort = freePort()
        let cases: [(option: String, value: String, expected: String)] = [
            ("--src-ca-file", other.dir + "/rapi.crt", "cannot reach 127.0.0.1:\(agent.port): its TLS certificate is not the one in the CA file \(other.dir)/rapi.crt"),
            ("--src-rapi-port", String(closedPort), "cannot reach 127.0.0.1:\(closedPort): connection refused"),
        ]
        for (option, value, expected) in cases {
            var arguments = agent.moveArguments(to: agent, ["vm1"], stateDir: agent.folder.file("state")) + ["--preflight"]
            guard let at = arguments.firstIndex(of: option) else { return XCTFail(option) }
            arguments[at + 1] = value
            let result = try gntMove(arguments: arguments)
            XCTAssertEqual(result.status, 1, option)
            XCTAssertTrue(result.stdout.contains("FAIL source reachable: " + expected), "\(option): \(result.stdout)")
            for leak in [".cc:", "BoringSSL", "NIOSSL", "errno", "RAPI error 0"] {
                XCTAssertFalse(result.stdout.contains(leak), "\(option) shows '\(leak)': \(result.stdout)")
            }
        }
    }

    /// `--net idx:mac=generate` gives the destination NIC a new address (Ganeti's prefix), and
    /// an unknown `--net` key is a usage error that lists the valid ones.
    func testNetOverridesGenerateMACsAndListTheirKeys() async throws {
        let pair = try AgentPair("contract-net")
        defer { pair.stop() }
        let image = pair.folder.file("n.img")
        try TestData.writeMixed(image, size: 1 << 20, seed: 9)
        try pair.source.addInstance("n1", disks: [image], extra: ["--nic", "mac=aa:00:00:00:00:42,mode=bridged,link=br0"])
        let arguments = pair.source.moveArguments(to: pair.destination, ["n1"], stateDir: pair.folder.file("state"))

        let bad = try gntMove(arguments: arguments + ["--net", "0:bridge=br1"])
        XCTAssertEqual(bad.status, 64, bad.stderr)
        XCTAssertTrue(bad.stderr.contains("name, mac, ip, mode, link, vlan, network"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: pair.folder.file("state")), "a usage error records nothing")

        let moved = try gntMove(arguments: arguments + ["--net", "0:mac=generate"])
        XCTAssertEqual(moved.status, 0, moved.stdout + moved.stderr)
        let macs = try await pair.destination.client().instance("n1")["nic.macs"]?.arrayValue?.compactMap(\.stringValue) ?? []
        XCTAssertEqual(macs.count, 1)
        XCTAssertTrue(macs.first?.hasPrefix("aa:00:00:") == true, "\(macs)")
        XCTAssertNotEqual(macs.first, "aa:00:00:00:00:42", "a new address, not the source's")
        XCTAssertNotEqual(macs.first, "generate")
    }
}
