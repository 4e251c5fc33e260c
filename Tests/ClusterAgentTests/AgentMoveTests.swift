import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// Two agents on loopback; a whole move driven over RAPI exactly as `move-instance` drives it
/// (docs/protocol.md §0): info, prepare-export, remote-import create, export, both jobs polled.
final class AgentMoveTests: XCTestCase {
    var folder: TemporaryDirectory!
    var source: AgentHarness!
    var destination: AgentHarness!

    override func setUpWithError() throws {
        let pair = try AgentPair("agents")
        (folder, source, destination) = (pair.folder, pair.source, pair.destination)
    }

    override func tearDown() {
        source?.stop()
        destination?.stop()
    }

    /// The third party's part of a move, as `move-instance` does it.
    func move(_ name: String, to newName: String? = nil, removeSource: Bool, compress: String = "none",
              tamper: ((inout JSONValue) -> Void)? = nil) async throws -> (JSONValue, JSONValue) {
        let src = try source.client()
        let dst = try destination.client()
        _ = try await src.instance(name)
        let info = try await src.pollJob(try await src.instanceInfo(name))
        let spec = try XCTUnwrap(info[name])
        let prepared = try await src.pollJob(try await src.prepareExport(name))
        let features = try await dst.features()
        XCTAssertTrue(features.contains("instance-create-reqv1"))
        var body: JSONValue = .object([
            "__version__": .int(1), "mode": .string("remote-import"), "name": .string(newName ?? name),
            "disk_template": spec["disk_template"] ?? .null,
            "disks": .array((spec["disks"]?.arrayValue ?? []).map { .object(["size": $0["size"] ?? .null, "mode": $0["mode"] ?? .null, "name": .string("None")]) }),
            "nics": .array([]), "os": spec["os"] ?? .null, "pnode": .null, "snode": .null, "iallocator": .string("gnt-move-most-free"),
            "start": .bool(true), "ip_check": .bool(false), "hypervisor": spec["hypervisor"] ?? .null,
            "source_handshake": prepared["handshake"] ?? .null, "source_x509_ca": prepared["x509_ca"] ?? .null,
            "source_instance_name": .string(name), "compress": .string(compress),
            "beparams": spec["be_instance"] ?? .object([:]), "hvparams": .object([:]), "osparams": .object([:]),
            "opportunistic_locking": .bool(false), "tags": .array([]), "wait_for_sync": .bool(false),
            "gnt_move_signed_spec": prepared["gnt_move_signed_spec"] ?? .null,
        ])
        tamper?(&body)
        let createJob = try await dst.createInstance(body)
        async let created: JSONValue = dst.pollJob(createJob)
        // The remote-import entry, as move-instance's destination thread hands it over.
        guard let handshake = try await destination.awaitRemoteImport(createJob) else { return (try await created, .null) }
        let exportJob = try await src.exportInstance(name, body: .object([
            "mode": .string("remote"), "destination": handshake["disks"] ?? .null, "shutdown": .bool(true),
            "remove_instance": .bool(removeSource), "x509_key_name": prepared["x509_key_name"] ?? .null,
            "destination_x509_ca": handshake["x509_ca"] ?? .null, "compress": .string(compress),
        ]))
        let exported = try await src.pollJob(exportJob)
        return (try await created, exported)
    }

    func testWholeMoveOverRAPIWithFileBackend() async throws {
        let image = folder.file("web1.img")
        try TestData.writeSparse(image, size: 64 << 20, dataRanges: [(0, 2 << 20), (40 << 20, 3 << 20 + 17)])
        let digest = try TestData.sha256(image)
        try source.addInstance("web1", disks: [image], extra: ["--memory", "256", "--running"])
        let (created, exported) = try await move("web1", removeSource: true)
        XCTAssertEqual(created, .array([.string("node-cluster-b")]))
        XCTAssertEqual(exported, .array([.bool(true), .array([.bool(true)])]))
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/web1.disk0"), digest, "byte-identical")
        do {
            _ = try await source.client().instance("web1")
            XCTFail("the source instance should be gone")
        } catch let error as RAPIError {
            XCTAssertEqual(error.status, 404)
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: image))
        let moved = try await destination.client().instance("web1")
        XCTAssertEqual(moved["status"]?.stringValue, "running")
        XCTAssertEqual(source.keyNames, [], "source key removed")
        XCTAssertEqual(destination.keyNames, [], "destination key removed")
    }

    func testKeepSourceAndRenameWithZstd() async throws {
        let image = folder.file("db1.img")
        try TestData.writeMixed(image, size: 6 << 20)
        try source.addInstance("db1", disks: [image])
        let (_, exported) = try await move("db1", to: "db1-copy", removeSource: false, compress: "zstd")
        XCTAssertEqual(exported, .array([.bool(true), .array([.bool(true)])]))
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/db1-copy.disk0"), try TestData.sha256(image))
        let kept = try await source.client().instance("db1")
        XCTAssertEqual(kept["name"]?.stringValue, "db1")
        XCTAssertEqual(source.keyNames, [])
    }

    /// Installs a small OS definition (Ganeti's OS API) whose export script adds a header line
    /// that its import script checks and strips, and whose rename script leaves a mark.
    func installOS(in agent: AgentHarness) throws {
        let folder = agent.dir + "/os/testos"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let scripts = [
            "ganeti_api_version": "20\n",
            "export": "#!/bin/bash\nset -e\necho \"TESTOS $INSTANCE_NAME $EXPORT_INDEX\"\ncat \"$EXPORT_DEVICE\"\n",
            "import": "#!/bin/bash\nset -e\nread -r header\ncase \"$header\" in \"TESTOS \"*\" $IMPORT_INDEX\") ;; *) echo \"bad header $header\" >&2; exit 1;; esac\ncat > \"$IMPORT_DEVICE\"\n",
            "rename": "#!/bin/bash\necho \"$OLD_INSTANCE_NAME $INSTANCE_NAME $DISK_COUNT\" > renamed\n",
        ]
        for (name, text) in scripts {
            try text.write(toFile: folder + "/" + name, atomically: true, encoding: .utf8)
            try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: folder + "/" + name)
        }
    }

    func testOSScriptsCarryTheDiskAndRenameRuns() async throws {
        try installOS(in: source)
        try installOS(in: destination)
        let image = folder.file("os1.img")
        try TestData.writeMixed(image, size: 3 << 20)
        try source.addInstance("os1", disks: [image], extra: ["--os", "testos+default"])
        let (_, exported) = try await move("os1", to: "os1-new", removeSource: false)
        XCTAssertEqual(exported, .array([.bool(true), .array([.bool(true)])]))
        XCTAssertEqual(try TestData.sha256(destination.dir + "/disks/os1-new.disk0"), try TestData.sha256(image))
        XCTAssertEqual(try String(contentsOfFile: destination.dir + "/os/testos/renamed", encoding: .utf8), "os1 os1-new 1\n")
    }

    func testTamperedCertificateIsRefusedAndNothingIsCreated() async throws {
        let image = folder.file("t1.img")
        try TestData.writeMixed(image, size: 2 << 20)
        try source.addInstance("t1", disks: [image])
        do {
            _ = try await move("t1", removeSource: false) { body in
                guard case .object(var fields) = body, let ca = fields["source_x509_ca"]?.stringValue else { return }
                fields["source_x509_ca"] = .string(ca.replacingOccurrences(of: "X-Ganeti-Signature: ", with: "X-Ganeti-Signature: 0").replacingOccurrences(of: "/", with: "/0", options: [], range: ca.range(of: "/")))
                body = .object(fields)
            }
            XCTFail("a tampered certificate must be refused")
        } catch let error as RAPIJobError {
            XCTAssertEqual(error.ecode, "wrong_input")
            XCTAssertTrue(error.message.contains("X509 certificate signature is invalid"), error.message)
        }
        do {
            _ = try await destination.client().instance("t1")
            XCTFail("nothing may be created")
        } catch let error as RAPIError {
            XCTAssertEqual(error.status, 404)
        }
    }

    func testAuthenticationAndErrors() async throws {
        let anonymous = try source.client(user: nil)
        let version = try await anonymous.version()
        XCTAssertEqual(version, 2)
        do {
            _ = try await anonymous.prepareExport("none")
            XCTFail("writes need a user")
        } catch let error as RAPIError { XCTAssertEqual(error.status, 401) }
        do {
            _ = try await source.client(password: "wrong").prepareExport("none")
            XCTFail("wrong password")
        } catch let error as RAPIError { XCTAssertEqual(error.status, 401) }
        do {
            _ = try await anonymous.instance("nope")
            XCTFail("unknown instance")
        } catch let error as RAPIError {
            XCTAssertEqual(error.status, 404)
            XCTAssertTrue(error.message.contains("Instance 'nope' not known"), error.message)
        }
        do {
            _ = try await source.client().request(.POST, "/2/instances", body: nil)
            XCTFail("missing body")
        } catch let error as RAPIError { XCTAssertEqual(error.status, 400) }
    }

    func testRestartedAgentAnswersForItsJobs() async throws {
        let image = folder.file("r1.img")
        try TestData.writeMixed(image, size: 1 << 20)
        try source.addInstance("r1", disks: [image])
        let client = try source.client()
        let id = try await client.prepareExport("r1")
        _ = try await client.pollJob(id)
        source.stop()
        try source.start()
        let job = try await source.client().job(id)
        XCTAssertEqual(job["status"]?.stringValue, "success")
        XCTAssertNotNil(job["opresult"]?.arrayValue?.first?["x509_key_name"])
    }
}
