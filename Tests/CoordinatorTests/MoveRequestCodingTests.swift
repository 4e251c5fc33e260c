import BlockStream
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// `MoveRequest` and `MoveFacts` as plain Codable values, and the event kinds against the schema.
final class MoveRequestCodingTests: XCTestCase {
    func fullRequest() -> MoveRequest {
        var source = ClusterEndpoint(host: "cluster-a.example", port: 5081, caFile: "/etc/a.pem", username: "mover")
        source.passwordFile = "/etc/a.password"
        var request = MoveRequest(source: source, destination: ClusterEndpoint(host: "2001:db8::1", caFile: "/etc/b.pem"), instance: "web1")
        request.destinationName = "web1-new"
        request.primaryNode = "node1.example"
        request.secondaryNode = "node2.example"
        request.diskTemplate = "plain"
        request.iallocator = "hail"
        request.compress = .zstd
        request.keepSourceInstance = true
        request.start = false
        request.hvparams = ["kernel_args": .string("ro"), "spice_port": .int(40123)]
        request.beparams = ["maxmem": .double(512)]
        request.osparams = ["list": .array([.int(1), .null])]
        request.nicOverrides = [0: ["link": "br1", "mac": nil], 2: ["mode": "routed"]]
        request.bandwidthLimit = 50_000_000
        request.timeout = 3600.5
        request.opportunisticTries = 3
        request.opportunisticDelay = 12
        request.storageMap = ["xenvg": "fastvg", "template:drbd": "plain"]
        request.bridgeMap = ["br0": "br9"]
        return request
    }

    func testEveryFieldSurvivesTheStoredForm() throws {
        let request = fullRequest()
        let json = try JSONValueEncoder().encode(request)
        XCTAssertEqual(json["net"]?["0"]?["mac"], .null)
        XCTAssertEqual(json["beparams"]?["maxmem"]?.serialized, "512.0", "a float stays a float")
        XCTAssertEqual(json["source"]?["password_file"]?.stringValue, "/etc/a.password")
        XCTAssertNil(json["source"]?["password"], "a password is never stored")
        let back = try JSONValueDecoder().decode(MoveRequest.self, from: try JSONValue(parsing: json.serialized))
        XCTAssertEqual(back, request)
    }

    /// A record stored before the maps existed has neither key: it decodes with empty maps.
    func testARecordWithoutMapsStillDecodes() throws {
        var stored = try JSONValueEncoder().encode(fullRequest()).objectValue ?? [:]
        XCTAssertEqual(stored["storage_map"], .object(["xenvg": .string("fastvg"), "template:drbd": .string("plain")]))
        XCTAssertEqual(stored["bridge_map"], .object(["br0": .string("br9")]))
        stored.removeValue(forKey: "storage_map")
        stored.removeValue(forKey: "bridge_map")
        let old = try JSONValueDecoder().decode(MoveRequest.self, from: .object(stored))
        XCTAssertEqual(old.storageMap, [:])
        XCTAssertEqual(old.bridgeMap, [:])
        XCTAssertNil(try JSONValueEncoder().encode(old)["storage_map"], "empty maps are not stored")
    }

    /// A Ganeti source's instance data: the maps give each disk its volume group and the
    /// template, the NICs their links, and the plan says so (a Ganeti end: Ganeti's stream).
    func testMapsApplyToAGanetiSpecAndThePlanShowsThem() throws {
        let spec = try JSONValue(parsing: #"""
        {"name": "web1", "disk_template": "drbd", "os": "debootstrap+default", "hypervisor": "kvm", "config_state": "down",
         "disks": [{"size": 1024, "mode": "rw", "dev_type": "drbd", "children": [{"dev_type": "plain", "logical_id": ["xenvg", "a.disk0_data"]}]},
                   {"size": 512, "mode": "rw", "dev_type": "drbd", "children": [{"dev_type": "plain", "logical_id": ["slowvg", "a.disk1_data"]}]}],
         "nics": [["n0", "u0", null, "aa:00:00:00:00:01", "bridged", "br0", "", null, null], ["n1", "u1", null, "aa:00:00:00:00:02", "bridged", "br2", "", null, null]]}
        """#)
        var request = fullRequest()
        request.diskTemplate = nil
        request.nicOverrides = [:]
        request.primaryNode = nil
        XCTAssertEqual(request.destinationTemplate(spec: spec), "plain")
        XCTAssertEqual(request.mappedVolumeGroups(spec: spec), ["fastvg", nil])
        XCTAssertEqual(request.mappedLinks(spec: spec), [0: "br9"])
        let overrides = request.overrides(spec: spec)
        XCTAssertEqual(overrides.diskTemplate, "plain")
        XCTAssertEqual(overrides.nics, [0: ["link": "br9"]])
        XCTAssertNil(request.overrides().nics[0], "without the spec, only the options")

        let plan = Coordinator.Plan(request: request, spec: spec, sourceFeatures: [], destinationFeatures: ["gnt-move-stream-v1"],
                                    destinationInfo: .object(["name": .string("cluster-b"), "default_iallocator": .string("hail")]))
        XCTAssertEqual(plan.stream, "ganeti", "a Ganeti source: Ganeti's stream")
        XCTAssertEqual(plan.disks.map(\.volumeGroup), ["fastvg", nil])
        XCTAssertEqual(plan.disks.map(\.sourceVolumeGroup), ["xenvg", "slowvg"])
        XCTAssertEqual(plan.iallocator, "hail", "-I hail of the request")
        XCTAssertFalse(plan.start, "it was stopped and --no-start")
        let text = plan.lines.joined(separator: "\n")
        for expected in ["1024 MiB, template drbd → plain, volume group xenvg → fastvg",
                         "512 MiB, template drbd → plain, the destination's default storage (source volume group slowvg, not mapped)",
                         "link br0 → br9", "link br2 (unchanged)", "Ganeti's stream", "chosen by iallocator hail", "always: it is already stopped",
                         "kept, stopped", "template:drbd=plain, xenvg=fastvg", "br0=br9"] {
            XCTAssertTrue(text.contains(expected), "'\(expected)' in:\n\(text)")
        }
    }

    func testARunRequestNamesTheFieldThatIsWrong() throws {
        let cluster = #""source": {"host": "a", "ca_file": "/x"}"#
        let cases: [(String, String)] = [
            (#"{"timeout": "soon"}"#, #"moves[0]: 'timeout' is "soon"; expected a number"#),
            (#"{"bwlimit": 1.5}"#, "moves[0]: 'bwlimit' is 1.5; expected an integer"),
            (#"{"keep_source_instance": "yes"}"#, #"moves[0]: 'keep_source_instance' is "yes"; expected true or false"#),
            (#"{"compress": "zst"}"#, "moves[0]: 'compress' is \"zst\"; expected one of \(CompressionMethod.acceptedNames)"),
            (#"{"net": {"0": {"link": 5}}}"#, "moves[0]: 'net.0.link' is 5; expected a string"),
            (#"{"hvparams": []}"#, "moves[0]: 'hvparams' is []; expected an object"),
        ]
        for (fields, expected) in cases {
            var move = try JSONValue(parsing: fields).objectValue ?? [:]
            move["instance"] = .string("vm1")
            let text = "{\(cluster), \"moves\": [\(JSONValue.object(move).serialized)]}"
            XCTAssertThrowsError(try RunRequest(json: try JSONValue(parsing: text)), fields) { error in
                XCTAssertEqual((error as? CoordinatorError)?.reason, .badRequest, fields)
                XCTAssertEqual("\(error)", expected, fields)
            }
        }
        XCTAssertThrowsError(try RunRequest(json: try JSONValue(parsing: #"{"source": {"ca_file": "/x"}, "moves": [{"instance": "vm1"}]}"#))) { error in
            XCTAssertEqual("\(error)", "moves[0]: 'source.host' is missing")
        }
    }

    func testFactsOfTheWrongTypeAreAnErrorNamingTheFact() throws {
        var facts = MoveFacts()
        facts.createJob = 7
        facts.prepared = try JSONValue(parsing: #"{"x509_ca": ["a", 1.0]}"#)
        XCTAssertEqual(try MoveFacts(json: try JSONValue(parsing: facts.json.serialized)), facts)
        XCTAssertThrowsError(try MoveFacts(json: try JSONValue(parsing: #"{"create_job": "7"}"#))) { error in
            XCTAssertEqual("\(error)", #"'create_job' is "7"; expected an integer"#)
        }
        XCTAssertEqual(try MoveFacts(json: try JSONValue(parsing: #"{"from_a_later_version": 1}"#)), MoveFacts())
    }

    func testEventKindsAreExactlyTheSchemasList() throws {
        let schema = try JSONValue(parsing: String(decoding: try Data(contentsOf: URL(fileURLWithPath: Repository.path("schemas/run-event.schema.json"))), as: UTF8.self))
        func findEnum(_ value: JSONValue) -> [String]? {
            if let kinds = value["properties"]?["event"]?["enum"]?.arrayValue { return kinds.compactMap(\.stringValue) }
            for child in value.objectValue?.values.map({ $0 }) ?? value.arrayValue ?? [] { if let found = findEnum(child) { return found } }
            return nil
        }
        XCTAssertEqual(findEnum(schema).map(Set.init), Set(MoveEventKind.allCases.map(\.rawValue)))
    }
}
