import MoveTrust
import XCTest

final class SignedInstanceSpecTests: XCTestCase {
    let cds = ClusterDomainSecret(key: "cd-secret")
    let spec = InstanceSpec(
        name: "web1.example.com", diskTemplate: "plain",
        disks: [.init(size: 10240, mode: "rw", name: "root"), .init(size: 2048)],
        nics: [.init(name: "eth0", mac: "aa:00:00:12:34:56", ip: nil, mode: "bridged", link: "br0", vlan: nil, network: nil)],
        os: "debootstrap+default", hypervisor: "kvm",
        beparams: ["memory": .int(2048), "vcpus": .int(2)], hvparams: ["kernel_path": .string("")],
        osparams: ["dhcp": .string("yes")], tags: ["web", "prod"])
    let binding = SignedInstanceSpec.Binding(sourceCluster: "cluster-a", destinationCluster: "cluster-b", keyName: "x509-k",
                                             certificateSHA256: String(repeating: "ab", count: 32), expires: UnixTime.now() + 3600)

    func testRoundTrip() throws {
        let signed = SignedInstanceSpec.sign(spec, binding: binding, secret: cds)
        let reparsed = try JSONValue(parsing: signed.serialized)
        let verified = try SignedInstanceSpec.verify(reparsed, secret: cds, expecting: .init(
            sourceCluster: "cluster-a", destinationCluster: "cluster-b", keyName: "x509-k", certificateSHA256: binding.certificateSHA256))
        XCTAssertEqual(verified.spec, spec)
        XCTAssertEqual(verified.binding, binding)
    }

    func testCanonicalEncodingIsStable() throws {
        let a = spec.json.serialized
        let b = try JSONValue(parsing: a).serialized
        XCTAssertEqual(a, b)
        XCTAssertTrue(a.hasPrefix(#"{"beparams":{"memory":2048,"vcpus":2},"disk_template":"plain","disks":[{"mode":"rw","name":"root","size":10240}"#), a)
    }

    func testEveryChangedFieldIsRefused() throws {
        let signed = SignedInstanceSpec.sign(spec, binding: binding, secret: cds)
        guard case .object(let fields) = signed, case .object(let body)? = fields["spec"] else { return XCTFail() }
        let changes: [(String, JSONValue)] = [
            ("name", .string("evil")), ("disk_template", .string("file")), ("os", .string("other")),
            ("hypervisor", .string("xen-pvm")), ("tags", .array([])), ("beparams", .object(["memory": .int(4096)])),
            ("disks", .array([.object(["size": .int(1), "mode": .string("rw"), "name": .null])])),
            ("nics", .array([])), ("osparams", .object([:])), ("hvparams", .object([:])),
        ]
        for (key, value) in changes {
            var tamperedBody = body
            tamperedBody[key] = value
            var tampered = fields
            tampered["spec"] = .object(tamperedBody)
            XCTAssertThrowsError(try SignedInstanceSpec.verify(.object(tampered), secret: cds), key) {
                XCTAssertTrue("\($0)".contains("instance spec signature is invalid"), "\($0)")
            }
        }
        let bindingChanges: [(String, JSONValue)] = [
            ("source_cluster", .string("cluster-b")), ("destination_cluster", .string("cluster-c")), ("x509_key_name", .string("x509-other")),
            ("source_cert_sha256", .string(String(repeating: "cd", count: 32))), ("expires", .int64(UnixTime.now() + 86400 * 30)),
            ("salt", .string("00")), ("version", .int(1)),
        ]
        for (key, value) in bindingChanges {
            var tampered = fields
            tampered[key] = value
            XCTAssertThrowsError(try SignedInstanceSpec.verify(.object(tampered), secret: cds), key)
        }
        XCTAssertThrowsError(try SignedInstanceSpec.verify(signed, secret: ClusterDomainSecret(key: "other")))
    }

    func testBindingToClustersKeyCertificateAndExpiry() throws {
        let signed = SignedInstanceSpec.sign(spec, binding: binding, secret: cds)
        let refusals: [(SignedInstanceSpec.Expectation, String)] = [
            (.init(sourceCluster: "cluster-b"), "signed for source cluster 'cluster-a', not 'cluster-b'"),
            (.init(destinationCluster: "cluster-c"), "bound to destination cluster 'cluster-b', not to this cluster 'cluster-c'"),
            (.init(keyName: "x509-other"), "bound to key 'x509-k'"),
            (.init(certificateSHA256: String(repeating: "cd", count: 32)), "bound to another source certificate"),
            (.init(now: binding.expires + 1), "instance spec expired at"),
        ]
        for (expectation, text) in refusals {
            XCTAssertThrowsError(try SignedInstanceSpec.verify(signed, secret: cds, expecting: expectation), text) {
                XCTAssertTrue("\($0)".contains(text), "\($0)")
            }
        }
        XCTAssertNoThrow(try SignedInstanceSpec.verify(signed, secret: cds, expecting: .init(now: binding.expires)))
    }

    func testMalformedSpecNamesTheField() throws {
        let bad = try JSONValue(parsing: #"{"name":"a","disk_template":"plain","hypervisor":"kvm","disks":[{"size":"big"}]}"#)
        XCTAssertThrowsError(try InstanceSpec(json: bad)) {
            XCTAssertEqual("\($0)", "instance spec field 'disks[0].size' must be a positive integer (MiB)")
        }
    }
}
