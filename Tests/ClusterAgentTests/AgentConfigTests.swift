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
            ("hypervisorDriver", "comand", "fake, command"),
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
}
