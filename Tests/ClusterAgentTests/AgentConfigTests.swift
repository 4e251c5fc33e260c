import AgentTestSupport
import ClusterAgent
import Foundation
import MoveTrust
import TestSupport
import XCTest

/// `agent.json` as an operator edits it: a typo in a closed set fails when the agent loads it,
/// naming the key and the accepted values.
final class AgentConfigTests: XCTestCase {
    func testTypoInAClosedSetFailsAtLoadNamingTheKey() throws {
        let agent = try AgentHarness.alone("config", cluster: "cluster-c")
        let paths = AgentPaths(root: agent.dir)
        let original = try XCTUnwrap(try JSONValue(parsing: String(contentsOfFile: paths.config, encoding: .utf8)).objectValue)
        let typos = [
            ("hypervisorDriver", "comand", "fake, command, libvirt"),
            ("storageBackend", "blok", "file, block"),
            ("hypervisor", "kvmm", "kvm, xen-pvm, xen-hvm, lxc, chroot, fake"),
        ]
        for (key, typo, accepted) in typos {
            var config = original
            config[key] = .string(typo)
            try JSONValue.object(config).serialized.write(toFile: paths.config, atomically: true, encoding: .utf8)
            let expected = "\(paths.config): '\(key)' is '\(typo)'; expected one of \(accepted)"
            XCTAssertThrowsError(try paths.loadConfig()) { error in
                XCTAssertEqual((error as? AgentError)?.message, expected)
            }
            let served = try gntMove("agent", "serve", "--dir", agent.dir)
            XCTAssertEqual(served.status, 1, served.stderr)
            XCTAssertEqual(served.stderr, "gnt-move: \(expected)\n")
        }
    }

    /// A misspelt key is not silently ignored (its setting would be the default): the agent
    /// refuses the file, naming the key.
    func testUnknownKeyFailsAtLoadNamingTheKey() throws {
        let agent = try AgentHarness.alone("config-key", cluster: "cluster-c")
        let paths = AgentPaths(root: agent.dir)
        var config = try XCTUnwrap(try JSONValue(parsing: String(contentsOfFile: paths.config, encoding: .utf8)).objectValue)
        config["stopCommandTimout"] = .int(5)
        try JSONValue.object(config).serialized.write(toFile: paths.config, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try paths.loadConfig()) { error in
            let message = (error as? AgentError)?.message ?? "\(error)"
            XCTAssertTrue(message.hasPrefix("\(paths.config): 'stopCommandTimout' is not a known key; expected one of clusterName, "), message)
            XCTAssertTrue(message.contains("stopCommandTimeout"), message)
        }
        let served = try gntMove("agent", "serve", "--dir", agent.dir)
        XCTAssertEqual(served.status, 1, served.stderr)
        XCTAssertTrue(served.stderr.contains("'stopCommandTimout' is not a known key"), served.stderr)
    }

    /// The host command timeouts: optional, with defaults; a value that is not a positive number
    /// of seconds fails at load, naming the key.
    func testCommandTimeouts() throws {
        let agent = try AgentHarness.alone("config-timeouts", cluster: "cluster-c")
        let paths = AgentPaths(root: agent.dir)
        let original = try XCTUnwrap(try JSONValue(parsing: String(contentsOfFile: paths.config, encoding: .utf8)).objectValue)
        let defaults = try paths.loadConfig()
        XCTAssertEqual(defaults.effectiveStartCommandTimeout, 300)
        XCTAssertEqual(defaults.effectiveStopCommandTimeout, 300)
        XCTAssertEqual(defaults.effectiveStatusCommandTimeout, 30)
        XCTAssertEqual(defaults.effectiveStorageCommandTimeout, 120)
        XCTAssertEqual(defaults.effectiveRenameScriptTimeout, 600)

        var config = original
        config["startCommandTimeout"] = .int(60)
        config["stopCommandTimeout"] = .int(90)
        config["statusCommandTimeout"] = .double(2.5)
        config["storageCommandTimeout"] = .int(45)
        config["renameScriptTimeout"] = .int(1200)
        try JSONValue.object(config).serialized.write(toFile: paths.config, atomically: true, encoding: .utf8)
        let set = try paths.loadConfig()
        XCTAssertEqual([set.effectiveStartCommandTimeout, set.effectiveStopCommandTimeout, set.effectiveStatusCommandTimeout,
                        set.effectiveStorageCommandTimeout, set.effectiveRenameScriptTimeout], [60, 90, 2.5, 45, 1200])

        let refusals: [(String, JSONValue, String)] = [
            ("statusCommandTimeout", .int(0), "'statusCommandTimeout' is 0; expected seconds above 0, at most 86400"),
            ("storageCommandTimeout", .int(-5), "'storageCommandTimeout' is -5; expected seconds above 0, at most 86400"),
            ("renameScriptTimeout", .int(100_000), "'renameScriptTimeout' is 100000; expected seconds above 0, at most 86400"),
            ("startCommandTimeout", .string("300"), "'startCommandTimeout' is not of type Double"),
        ]
        for (key, value, why) in refusals {
            var config = original
            config[key] = value
            try JSONValue.object(config).serialized.write(toFile: paths.config, atomically: true, encoding: .utf8)
            XCTAssertThrowsError(try paths.loadConfig()) { error in
                XCTAssertEqual((error as? AgentError)?.message, "\(paths.config): \(why)")
            }
        }
    }
}
