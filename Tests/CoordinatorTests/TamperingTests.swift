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
        let before = try await SystemSnapshot.take([source, destination], folder: folder)
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
        // Everything as before on both sides, and no key left.
        XCTAssertTrue(waitFor(timeout: 30) { self.source.keyNames.isEmpty && self.destination.keyNames.isEmpty },
                      "keys left: \(source.keyNames + destination.keyNames)")
        try await SystemSnapshot.take([source, destination], folder: folder).assertSame(as: before, "tampered relay")
        // The proxies must outlive the move, which runs after their last use above.
        withExtendedLifetime((sourceProxy, destinationProxy)) {}
        return last
    }

    /// A RAPI peer whose job log entries are cut short (a buggy or hostile source): every entry
    /// of the source's jobs, in `oplog` and in `/wait`'s `log_entries`, is truncated to one or
    /// two of its four fields. The coordinator must read them without crashing, ignore what it
    /// cannot use, and still complete the move from the jobs' status.
    func testShortJobLogEntriesFromAPeerDoNotCrashTheCoordinator() async throws {
        let digest = try TestData.sha256(folder.file("vm.img"))
        let cut: TamperingProxy.Rewrite = { method, path, body in
            guard method == "GET", path.hasPrefix("/2/jobs/") else { return body }
            func shorten(_ entries: JSONValue?) -> JSONValue? {
                guard case .array(let list)? = entries else { return entries }
                return .array(list.enumerated().map { index, entry in
                    guard case .array(let parts) = entry else { return entry }
                    return .array(Array(parts.prefix(index % 2 + 1)))
                })
            }
            guard case .object(var fields) = body else { return body }
            if let entries = shorten(fields["log_entries"]) { fields["log_entries"] = entries }
            if case .array(let oplog)? = fields["oplog"] { fields["oplog"] = .array(oplog.map { shorten($0) ?? $0 }) }
            return .object(fields)
        }
        let sourceProxy = try TamperingProxy(target: endpoint(source), folder: folder, name: "src", responseRewrite: cut)
        let result = try gntMove(arguments: [
            "move", "127.0.0.1", "127.0.0.1", "vm", "--json", "--state-dir", folder.file("state"),
            "--src-rapi-port", String(sourceProxy.port), "--dest-rapi-port", String(destination.port),
            "--src-ca-file", sourceProxy.certificatePath, "--dest-ca-file", destination.dir + "/rapi.crt",
            "--src-username", "gnt-move", "--src-password-file", source.dir + "/password",
            "--dest-username", "gnt-move", "--dest-password-file", destination.dir + "/password",
        ])
        XCTAssertEqual(result.status, 0, result.stdout + result.stderr)
        XCTAssertEqual(try JSONValue(parsing: String(result.stdout.split(separator: "\n").last ?? ""))["event"]?.stringValue, "move-done")
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/vm.disk0"), digest)
        withExtendedLifetime(sourceProxy) {}
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

    /// Every field of the remote-import request, signed or not, altered by the relay without
    /// declaring an override: each is refused before anything is created, naming the field.
    func testEveryAlteredCreateFieldIsRefusedNamingIt() async throws {
        let cases: [(String, @Sendable (JSONValue) -> JSONValue, String)] = [
            ("source_handshake", { _ in .array([.int(0), .string("0000"), .string("abcd")]) }, "Hash didn't match"),
            ("source_x509_ca", { value in .string((value.stringValue ?? "").replacingOccurrences(of: "MII", with: "MIJ")) }, "X509 certificate"),
            ("source_instance_name", { _ in .string("other-vm") }, "source_instance_name"),
            ("name", { _ in .string("vm-renamed") }, "no name override is declared"),
            ("beparams", { value in Tamper.set(value, "maxmem", .int(65536)) }, "beparams.maxmem"),
            ("hvparams", { value in Tamper.set(value, "kernel_path", .string("/boot/evil")) }, "hvparams.kernel_path"),
            ("osparams", { value in Tamper.set(value, "root_password", .string("x")) }, "osparams.root_password"),
            ("os", { _ in .string("debootstrap") }, "os: the request asks for"),
            ("disk_template", { _ in .string("plain") }, "disk_template: the request asks for"),
            ("tags", { _ in .array([.string("evil")]) }, "tags: the request asks for"),
            ("disks", { _ in .array([.object(["size": .int(4), "mode": .string("rw"), "name": .string("None")])]) }, "disks[0].size"),
            ("nics", { _ in .array([.object(["link": .string("br-evil"), "mode": .string("bridged")])]) }, "nics: the request asks for 1"),
            ("gnt_move_overrides", { _ in .object(["hvparams": .object(["kernel_path": .string("/boot/evil")])]) }, "gnt_move_overrides.hvparams"),
        ]
        for (field, change, text) in cases {
            let failure = try await moveThrough(destination: ({ method, path, body in
                guard method == "POST", path == "/2/instances" else { return body }
                return Tamper.field(body, field, change)
            }, { _, _, body in body }))
            XCTAssertTrue(failure["message"]?.stringValue?.contains(text) == true, "\(field): \(failure.serialized)")
        }
    }

    /// The export request's relayed fields: the destination's certificate and each disk's host,
    /// port and magic are signed by the destination; altering any is refused by the source.
    func testEveryAlteredExportFieldIsRefusedNamingIt() async throws {
        let diskCases: [(Int, JSONValue, String)] = [(0, .string("127.0.0.2"), "host"), (2, .string("0000"), "magic")]
        for (position, value, label) in diskCases {
            let failure = try await moveThrough(source: ({ method, path, body in
                guard method == "PUT", path.hasSuffix("/export") else { return body }
                return Tamper.field(body, "destination") { disks in
                    guard case .array(var list) = disks, case .array(var first)? = list.first, first.count > position else { return disks }
                    first[position] = value
                    list[0] = .array(first)
                    return .array(list)
                }
            }, { _, _, body in body }))
            XCTAssertEqual(failure["message"]?.stringValue?.contains("Target info for disk 0: HMAC is wrong"), true, "\(label): \(failure.serialized)")
        }
        let certificate = try await moveThrough(source: ({ method, path, body in
            guard method == "PUT", path.hasSuffix("/export") else { return body }
            return Tamper.field(body, "destination_x509_ca") { .string(($0.stringValue ?? "").replacingOccurrences(of: "MII", with: "MIJ")) }
        }, { _, _, body in body }))
        XCTAssertTrue(certificate["message"]?.stringValue?.contains("X509 certificate") == true, certificate.serialized)
    }

    /// A relay that drops the signed spec (so that the unsigned fields would count) is refused
    /// by a destination that requires signed specs.
    func testDroppedSpecIsRefusedWhereSignedSpecsAreRequired() async throws {
        destination.stop()
        let configPath = destination.dir + "/agent.json"
        var config = try XCTUnwrap(try JSONValue(parsing: String(contentsOfFile: configPath, encoding: .utf8)).objectValue)
        config["requireSignedSpec"] = .bool(true)
        try JSONValue.object(config).serialized.write(toFile: configPath, atomically: true, encoding: .utf8)
        try destination.start()
        let failure = try await moveThrough(destination: ({ method, path, body in
            guard method == "POST", path == "/2/instances", case .object(var fields) = body else { return body }
            fields.removeValue(forKey: "gnt_move_signed_spec")
            return .object(fields)
        }, { _, _, body in body }))
        XCTAssertTrue(failure["message"]?.stringValue?.contains("requires a signed instance spec") == true, failure.serialized)
    }
}
