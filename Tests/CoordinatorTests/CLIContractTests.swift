import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import MoveTrust
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
                                                         "--hypervisor-driver", "fake", "--password-file", passwordFile, "--bind", "127.0.0.1"],
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

    /// `agent init` never publishes a loopback data address by default for an agent that serves
    /// other hosts, and `--preflight` warns when a destination does so to a source on another host.
    func testDataAddressDefaultsAndTheLoopbackWarning() throws {
        let folder = TemporaryDirectory("contract")
        func initAgent(_ name: String, _ extra: [String]) throws -> (ProcessResult, JSONValue?) {
            let result = try gntMove(arguments: ["agent", "init", "--dir", folder.file(name), "--cluster-name", name, "--hypervisor-driver", "fake"] + extra)
            let config = try? JSONValue(parsing: String(contentsOfFile: folder.file(name + "/agent.json"), encoding: .utf8))
            return (result, config)
        }
        // Every address, and a node name that resolves only to loopback: nothing to publish.
        let (wildcard, none) = try initAgent("a", ["--node-name", "localhost"])
        XCTAssertEqual(wildcard.status, 1)
        XCTAssertEqual(wildcard.stderr, "gnt-move: --data-address is needed: the agent binds 0.0.0.0 and its node name localhost resolves only to 127.0.0.1 (loopback), so there is no address to publish that a remote source can reach\n")
        XCTAssertNil(none, "nothing is created")
        // One address: the daemons listen there too.
        let (one, oneConfig) = try initAgent("b", ["--bind", "192.0.2.77"])
        XCTAssertEqual(one.status, 0, one.stderr)
        XCTAssertEqual(oneConfig?["dataAddress"]?.stringValue, "192.0.2.77")
        // Every address, and a node name with a routable address.
        let (node, nodeConfig) = try initAgent("c", ["--node-name", "198.51.100.9"])
        XCTAssertEqual(node.status, 0, node.stderr)
        XCTAssertEqual(nodeConfig?["dataAddress"]?.stringValue, "198.51.100.9")
        // Loopback chosen by the operator for an agent serving every address: a warning.
        let (chosen, chosenConfig) = try initAgent("d", ["--node-name", "localhost", "--data-address", "127.0.0.1"])
        XCTAssertEqual(chosen.status, 0, chosen.stderr)
        XCTAssertEqual(chosenConfig?["dataAddress"]?.stringValue, "127.0.0.1")
        XCTAssertTrue(chosen.stderr.contains("warning: the data address 127.0.0.1 is loopback"), chosen.stderr)

        // Preflight: a destination publishing loopback, reached by a source at another address.
        let addresses = try runProcess("/bin/hostname", ["-I"]).stdout.split(separator: " ").map { $0.trimmingCharacters(in: .whitespacesAndNewlines) }
        guard let routable = addresses.first(where: { NetworkNames.isIPv4($0) && !NetworkNames.isLoopback($0) }) else {
            throw XCTSkip("this host has no non-loopback IPv4 address")
        }
        let destination = try AgentHarness.startedWithOneInstance("contract-dst", cluster: "cluster-b")
        defer { destination.stop() }
        let source = try AgentHarness(cluster: "cluster-a", secret: destination.folder.file("cds"), folder: destination.folder, bind: "0.0.0.0")
        try source.start()
        defer { source.stop() }
        let image = source.folder.file("source-vm1.img")
        try TestData.writeMixed(image, size: 1 << 20)
        try source.addInstance("vm1", disks: [image])
        let sourceEnd = MoveEnd(host: routable, port: source.port, caFile: source.dir + "/rapi.crt", passwordFile: source.dir + "/password")
        let destinationEnd = MoveEnd(host: "127.0.0.1", port: destination.port, caFile: destination.dir + "/rapi.crt", passwordFile: destination.dir + "/password")
        let remote = try gntMove(arguments: sourceEnd.moveArguments(to: destinationEnd, ["vm1"], stateDir: source.folder.file("state")) + ["--preflight"])
        XCTAssertTrue(remote.stdout.contains("WARN data address: the destination publishes 127.0.0.1, a loopback address, but the source \(routable) is another host"),
                      remote.stdout + remote.stderr)
        let local = try gntMove(arguments: MoveEnd(host: "127.0.0.1", port: source.port, caFile: source.dir + "/rapi.crt", passwordFile: source.dir + "/password").moveArguments(to: destinationEnd, ["vm1"], stateDir: source.folder.file("state")) + ["--preflight"])
        XCTAssertTrue(local.stdout.contains("ok   data address: 127.0.0.1 (loopback; the source is on the same host)"), local.stdout)
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
