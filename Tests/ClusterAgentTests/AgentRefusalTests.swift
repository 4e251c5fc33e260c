import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// What the agents refuse, with Ganeti's error codes, and what survives a crash.
final class AgentRefusalTests: XCTestCase {
    var folder: TemporaryDirectory!
    var source: AgentHarness!
    var destination: AgentHarness!

    override func setUpWithError() throws {
        let pair = try AgentPair("refusals")
        (folder, source, destination) = (pair.folder, pair.source, pair.destination)
        let image = folder.file("vm1.img")
        try TestData.writeMixed(image, size: 3 << 20)
        try source.addInstance("vm1", disks: [image])
    }

    override func tearDown() {
        source?.stop()
        destination?.stop()
    }

    /// A remote-import request as move-instance builds it, from a fresh prepare-export.
    func importRequest(name: String = "vm1") async throws -> (JSONValue, JSONValue) {
        let src = try source.client()
        let prepared = try await src.pollJob(try await src.prepareExport("vm1", destinationCluster: "cluster-b"))
        let body: JSONValue = .object([
            "__version__": .int(1), "mode": .string("remote-import"), "name": .string(name), "disk_template": .string("file"),
            "disks": .array([.object(["size": .int(3), "mode": .string("rw"), "name": .string("None")])]),
            "nics": .array([]), "os": .null, "hypervisor": .string("kvm"), "start": .bool(false),
            "source_handshake": prepared["handshake"] ?? .null, "source_x509_ca": prepared["x509_ca"] ?? .null,
            "source_instance_name": .string("vm1"), "compress": .string("none"),
            "gnt_move_signed_spec": prepared["gnt_move_signed_spec"] ?? .null,
            "beparams": .object(["maxmem": .int(512), "minmem": .int(512), "vcpus": .int(1)]),
            "gnt_move_overrides": name == "vm1" ? .null : .object(["name": .string(name)]),
        ])
        return (body, prepared)
    }

    func assertCreateRefused(_ body: JSONValue, ecode: String, containing text: String, file: StaticString = #filePath, line: UInt = #line) async throws {
        let dst = try destination.client()
        do {
            _ = try await dst.pollJob(try await dst.createInstance(body))
            XCTFail("accepted", file: file, line: line)
        } catch let error as RAPIJobError {
            XCTAssertEqual(error.ecode, ecode, error.description, file: file, line: line)
            XCTAssertTrue(error.message.contains(text), error.message, file: file, line: line)
        }
    }

    func changed(_ body: JSONValue, _ key: String, _ value: JSONValue) -> JSONValue {
        guard case .object(var fields) = body else { return body }
        fields[key] = value
        return .object(fields)
    }

    func testDestinationRefusals() async throws {
        let (body, _) = try await importRequest()
        // With the signed spec, a field that contradicts it is refused naming the field.
        try await assertCreateRefused(changed(body, "disk_template", .string("drbd")), ecode: "wrong_input", containing: "disk_template: the request asks for \"drbd\"")
        try await assertCreateRefused(changed(body, "hypervisor", .string("xen-pvm")), ecode: "wrong_input", containing: "hypervisor: the request asks for \"xen-pvm\"")
        // Without it (a Ganeti source), the request's own fields are checked.
        let unsigned = changed(body, "gnt_move_signed_spec", .null)
        try await assertCreateRefused(changed(unsigned, "disk_template", .string("drbd")), ecode: "wrong_input", containing: "Disk template 'drbd' is not enabled")
        try await assertCreateRefused(changed(unsigned, "hypervisor", .string("xen-pvm")), ecode: "wrong_input", containing: "hypervisor (xen-pvm) not enabled")
        // A compression the daemons do not know is refused before anything is created.
        try await assertCreateRefused(changed(body, "compress", .string("zst")), ecode: "wrong_input",
                                      containing: "compress: 'zst' is not one of none, gzip, gzip-fast, gzip-slow, zstd")
        try await assertCreateRefused(changed(unsigned, "disks", .array([.object(["size": .int(1 << 40), "mode": .string("rw")])])),
                                      ecode: "insufficient_resources", containing: "Not enough disk space")
        try await assertCreateRefused(changed(body, "source_handshake", .array([.int(0), .string("0000"), .string("salt")])),
                                      ecode: "wrong_input", containing: "Hash didn't match")
        // The signed spec says 3 MiB; a relay that asks for 4 is refused.
        try await assertCreateRefused(changed(body, "disks", .array([.object(["size": .int(4), "mode": .string("rw")])])),
                                      ecode: "wrong_input", containing: "disks[0].size: the request asks for 4 MiB")
        guard case .object(var signed)? = body["gnt_move_signed_spec"], case .object(var spec)? = signed["spec"] else { return XCTFail() }
        spec["hypervisor"] = .string("lxc")
        signed["spec"] = .object(spec)
        try await assertCreateRefused(changed(body, "gnt_move_signed_spec", .object(signed)), ecode: "wrong_input", containing: "instance spec signature is invalid")
        try await assertCreateRefused(changed(body, "pnode", .string("elsewhere")), ecode: "unknown_entity", containing: "Node 'elsewhere' not known")
        // An existing name.
        let image = folder.file("taken.img")
        try TestData.writeMixed(image, size: 1 << 20)
        try destination.addInstance("taken", disks: [image])
        try await assertCreateRefused(changed(body, "name", .string("taken")), ecode: "wrong_input", containing: "no name override is declared")
        try await assertCreateRefused(changed(changed(body, "name", .string("taken")), "gnt_move_overrides", .object(["name": .string("taken")])),
                                      ecode: "already_exists", containing: "already in the cluster")
        let instances = try await destination.client().request(.GET, "/2/instances")
        XCTAssertEqual(instances.arrayValue?.count, 1, "nothing but 'taken' was created")
        XCTAssertEqual(destination.keyNames, [])
    }

    func testSourceRefusesTamperedDestinationAndKeyName() async throws {
        let src = try source.client()
        let dst = try destination.client()
        let (body, prepared) = try await importRequest()
        let createJob = try await dst.createInstance(body)
        let handshake = try await destination.awaitRemoteImport(createJob) ?? .null
        guard case .array(var disks)? = handshake["disks"], case .array(var first) = disks[0] else { return XCTFail("no disk info") }
        first[1] = .int64((first[1].integerValue ?? 0) + 1)
        disks[0] = .array(first)
        let export: JSONValue = .object([
            "mode": .string("remote"), "destination": .array(disks), "shutdown": .bool(true), "remove_instance": .bool(true),
            "x509_key_name": prepared["x509_key_name"] ?? .null, "destination_x509_ca": handshake["x509_ca"] ?? .null,
        ])
        do {
            _ = try await src.pollJob(try await src.exportInstance("vm1", body: export))
            XCTFail("a redirected port must be refused")
        } catch let error as RAPIJobError {
            XCTAssertEqual(error.ecode, "wrong_input")
            XCTAssertEqual(error.message, "Target info for disk 0: HMAC is wrong")
        }
        guard case .array(var key)? = prepared["x509_key_name"] else { return XCTFail() }
        key[0] = .string("x509-2020-01-01_00_00_00-aaaaaaaa")
        do {
            _ = try await src.pollJob(try await src.exportInstance("vm1", body: changed(export, "x509_key_name", .array(key))))
            XCTFail("a forged key name must be refused")
        } catch let error as RAPIJobError {
            XCTAssertEqual(error.message, "HMAC for X509 key name is wrong")
        }
        let instance = try await src.instance("vm1")
        XCTAssertEqual(instance["name"]?.stringValue, "vm1", "the source instance is untouched")
        _ = try await dst.cancelJob(createJob)
    }

    func testReadOnlyUserAndMalformedBodies() async throws {
        let users = source.dir + "/users"
        let text = try String(contentsOfFile: users, encoding: .utf8)
        try (text + "reader {cleartext}secret read\n").write(toFile: users, atomically: true, encoding: .utf8)
        do {
            _ = try await source.client(user: "reader", password: "secret").prepareExport("vm1")
            XCTFail("a read-only user may not write")
        } catch let error as RAPIError { XCTAssertEqual(error.status, 403) }
        let version = try await source.client(user: "reader", password: "secret").version()
        XCTAssertEqual(version, 2)
        do {
            _ = try await source.client().request(.POST, "/2/instances", body: nil)
            XCTFail()
        } catch let error as RAPIError { XCTAssertEqual(error.status, 400) }
        // A truncated JSON body, sent raw.
        let result = try runProcess("/usr/bin/curl", ["-sk", "-u", "gnt-move:\(source.password)", "-X", "POST", "-H", "Content-Type: application/json",
                                                      "--data", "{\"__version__\": 1, \"mode\": \"cre", "https://127.0.0.1:\(source.port)/2/instances"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let answer = try JSONValue(parsing: result.stdout)
        XCTAssertEqual(answer["code"]?.integerValue, 400)
        XCTAssertTrue(answer["message"]?.stringValue?.hasPrefix("Unable to parse JSON data") == true, result.stdout)
    }

    func testInterruptedImportIsFailedAndCleanedAfterRestart() async throws {
        let dst = try destination.client()
        let (body, _) = try await importRequest(name: "vm1-copy")
        let createJob = try await dst.createInstance(body)
        XCTAssertTrue(waitFor(timeout: 20) { self.destination.keyNames.count == 1 }, "the import never started")
        XCTAssertTrue(waitFor(timeout: 20) { FileManager.default.fileExists(atPath: self.destination.dir + "/disks/vm1-copy.disk0") })
        destination.stop()
        try destination.start()
        let job = try await destination.client().job(createJob)
        XCTAssertEqual(job["status"]?.stringValue, "error")
        XCTAssertTrue(job["opresult"]?.serialized.contains("agent stopped while this job was running") == true, job.serialized)
        do {
            _ = try await destination.client().instance("vm1-copy")
            XCTFail("the half-created instance must be gone")
        } catch let error as RAPIError { XCTAssertEqual(error.status, 404) }
        XCTAssertEqual(destination.keyNames, [], "its key too")
        XCTAssertFalse(FileManager.default.fileExists(atPath: destination.dir + "/disks/vm1-copy.disk0"))
    }
}
