import AgentTestSupport
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// A lying third party (a proxy between the coordinator and the agents) alters what it relays;
/// each move is refused before any data moves, with an error that names what failed to verify.
final class TamperingTests: XCTestCase {
    var folder: TemporaryDirectory!
    var source: AgentHarness!
    var destination: AgentHarness!

    override func setUpWithError() throws {
        let pair = try AgentPair("tamper")
        (folder, source, destination) = (pair.folder, pair.source, pair.destination)
        let image = folder.file("vm.img")
        try TestData.writeMixed(image, size: 2 << 20)
        try source.addInstance("vm", disks: [image], extra: ["--running"])
    }

    override func tearDown() {
        source?.stop()
        destination?.stop()
    }

    func endpoint(_ agent: AgentHarness) -> ClusterEndpoint {
        ClusterEndpoint(host: "127.0.0.1", port: agent.port, caFile: agent.dir + "/rapi.crt", username: "gnt-move", password: agent.password)
    }

    /// Runs `gnt-move move --json` through the proxies; returns the failure event.
    func moveThrough(source sourceRewrite: (TamperingProxy.Rewrite, TamperingProxy.Rewrite)? = nil,
                     destination destinationRewrite: (TamperingProxy.Rewrite, TamperingProxy.Rewrite)? = nil) async throws -> JSONValue {
        let identity: TamperingProxy.Rewrite = { _, _, body in body }
        let sourceProxy = try TamperingProxy(target: endpoint(source), folder: folder, name: "src",
                                             requestRewrite: sourceRewrite?.0 ?? identity, responseRewrite: sourceRewrite?.1 ?? identity)
        let destinationProxy = try TamperingProxy(target: endpoint(destination), folder: folder, name: "dst",
                                                  requestRewrite: destinationRewrite?.0 ?? identity, responseRewrite: destinationRewrite?.1 ?? identity)
        let result = try gntMove(arguments: [
            "move", "127.0.0.1", "127.0.0.1", "vm", "--json", "--state-dir", folder.file("state"),
            "--src-rapi-port", String(sourceProxy.port), "--dest-rapi-port", String(destinationProxy.port),
            "--src-ca-file", sourceProxy.certificatePath, "--dest-ca-file", destinationProxy.certificatePath,
            "--src-username", "gnt-move", "--src-password-file", source.dir + "/password",
            "--dest-username", "gnt-move", "--dest-password-file", destination.dir + "/password",
        ])
        XCTAssertEqual(result.status, 1, result.stdout + result.stderr)
        let last = try JSONValue(parsing: String(result.stdout.split(separator: "\n").last ?? ""))
        XCTAssertEqual(last["event"]?.stringValue, "move-failed")
        // Nothing moved: the source is intact and running; nothing is left on the destination.
        let sourceInstance = try await source.client().instance("vm")
        XCTAssertEqual(sourceInstance["status"]?.stringValue, "running")
        let left = try await destination.client().request(.GET, "/2/instances")
        XCTAssertEqual(left, .array([]))
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination.dir + "/disks/vm.disk0"))
        // The proxies must outlive the move, which runs after their last use above.
        withExtendedLifetime((sourceProxy, destinationProxy)) {}
        return last
    }

    func testAlteredDestinationCertificateIsRefused() async throws {
        let failure = try await moveThrough(destination: ({ _, _, body in body }, { method, path, body in
            guard method == "GET", path.hasPrefix("/2/jobs/") else { return body }
            return Tamper.remoteImport(body) { message in
                guard let pem = message["x509_ca"]?.stringValue else { return }
                message["x509_ca"] = .string(pem.replacingOccurrences(of: "MII", with: "MIJ"))
            }
        }))
        let text = failure["message"]?.stringValue ?? ""
        XCTAssertTrue(text.contains("X509 certificate"), text)
    }

    func testRedirectedDiskPortIsRefused() async throws {
        let failure = try await moveThrough(destination: ({ _, _, body in body }, { method, path, body in
            guard method == "GET", path.hasPrefix("/2/jobs/") else { return body }
            return Tamper.remoteImport(body) { message in
                guard case .array(var disks)? = message["disks"], case .array(var first) = disks[0] else { return }
                first[1] = .int64((first[1].integerValue ?? 0) + 1)
                disks[0] = .array(first)
                message["disks"] = .array(disks)
            }
        }))
        XCTAssertEqual(failure["message"]?.stringValue?.contains("Target info for disk 0: HMAC is wrong"), true, failure.serialized)
    }

    func testAlteredSpecIsRefused() async throws {
        let failure = try await moveThrough(destination: ({ method, path, body in
            guard method == "POST", path == "/2/instances" else { return body }
            return Tamper.field(body, "gnt_move_signed_spec") { signed in
                Tamper.field(signed, "spec") { spec in Tamper.field(spec, "beparams") { _ in .object(["maxmem": .int(65536)]) } }
            }
        }, { _, _, body in body }))
        XCTAssertEqual(failure["message"]?.stringValue?.contains("instance spec signature is invalid"), true, failure.serialized)
    }

    func testForgedKeyNameIsRefused() async throws {
        let failure = try await moveThrough(source: ({ method, path, body in
            guard method == "PUT", path.hasSuffix("/export") else { return body }
            return Tamper.field(body, "x509_key_name") { value in
                guard case .array(var parts) = value else { return value }
                parts[0] = .string("x509-2020-01-01_00_00_00-forged00")
                return .array(parts)
            }
        }, { _, _, body in body }))
        XCTAssertEqual(failure["message"]?.stringValue?.contains("HMAC for X509 key name is wrong"), true, failure.serialized)
    }
}
