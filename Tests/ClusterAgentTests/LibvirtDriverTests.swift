import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// The libvirt hypervisor driver against real libvirt daemons and real QEMU
/// (`Tests/LibvirtLab/libvirt-lab`): two independent hosts on one machine, each an agent's.
/// The domains have no OS: they run, and they ignore an ACPI shutdown, so the shutdown timeout
/// and the forced stop happen for real.
final class LibvirtDriverTests: XCTestCase {
    var folder: TemporaryDirectory!
    var labs: [LibvirtLab] = []
    var agents: [AgentHarness] = []
    var secret: String!

    override func setUpWithError() throws {
        try LibvirtLab.requireAvailable()
        folder = TemporaryDirectory("libvirt")
        // QEMU runs as libvirt-qemu and opens the images by path.
        chmod(folder.path, 0o711)
        secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
    }

    override func tearDown() {
        agents.forEach { $0.stop() }
        labs.forEach { $0.stop() }
    }

    func host(_ name: String) throws -> LibvirtLab {
        let lab = try LibvirtLab(name)
        labs.append(lab)
        return lab
    }

    /// A started agent whose instances are the lab's domains.
    func agent(_ cluster: String, on lab: LibvirtLab, domainType: String = LibvirtLab.domainType, extra: [String] = []) throws -> AgentHarness {
        let agent = try AgentHarness(cluster: cluster, secret: secret, folder: folder,
                                     initArguments: ["--hypervisor-driver", "libvirt", "--libvirt-uri", lab.uri,
                                                     "--libvirt-domain-type", domainType] + extra)
        try agent.start()
        agents.append(agent)
        return agent
    }

    func image(_ name: String, size: Int = 8 << 20) throws -> String {
        let path = folder.file(name)
        try TestData.writeMixed(path, size: size, seed: UInt64(name.utf8.count))
        return path
    }

    func adopt(_ domain: String, into agent: AgentHarness, extra: [String] = []) throws -> ProcessResult {
        try gntMove(arguments: ["agent", "add-instance", "--dir", agent.dir, "--domain", domain] + extra)
    }

    /// Start, state and stop through the agent: the state is libvirt's; an ACPI shutdown the
    /// guest ignores ends in a forced stop only where the operator allowed one.
    func testStartStateAndAForcedStopOnlyWhereAllowed() async throws {
        let lab = try host("hosta")
        try lab.defineDomain("web1", disks: [try image("web1.img")], start: false)
        try lab.defineDomain("web2", disks: [try image("web2.img")], start: true)
        let forcing = try agent("forcing", on: lab, extra: ["--force-stop-after", "1"])
        let adopted = try adopt("web1", into: forcing)
        XCTAssertEqual(adopted.status, 0, adopted.stderr)
        let client = try forcing.client()
        let instance = try await client.instance("web1")
        XCTAssertEqual(instance["status"]?.stringValue, "ADMIN_down")
        XCTAssertEqual(instance["disk.sizes"], .array([.int(8)]))
        XCTAssertEqual(instance["beparams"]?["maxmem"]?.integerValue, 96)

        _ = try await client.pollJob(try await client.request(.PUT, "/2/instances/web1/startup").integerValue ?? -1)
        XCTAssertEqual(try lab.state("web1"), "running")
        let afterStart = try await client.instance("web1")["status"]?.stringValue
        XCTAssertEqual(afterStart, "running")
        let began = Date()
        _ = try await client.pollJob(try await client.request(.PUT, "/2/instances/web1/shutdown").integerValue ?? -1)
        XCTAssertEqual(try lab.state("web1"), "shut off", "forced off after the ignored ACPI shutdown")
        XCTAssertGreaterThanOrEqual(Date().timeIntervalSince(began), 1, "the guest had its second to shut down")
        let afterStop = try await client.instance("web1")["status"]?.stringValue
        XCTAssertEqual(afterStop, "ADMIN_down")

        // The same guest on an agent that may not force it: the stop fails, the domain runs on.
        var config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: forcing.dir + "/agent.json"))) as? [String: Any] ?? [:]
        XCTAssertEqual(config["forceStopAfter"] as? Double, 1)
        let patient = try agent("patient", on: lab)
        config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: patient.dir + "/agent.json"))) as? [String: Any] ?? [:]
        XCTAssertNil(config["forceStopAfter"])
        patient.stop()
        config["stopCommandTimeout"] = 1
        try JSONSerialization.data(withJSONObject: config).write(to: URL(fileURLWithPath: patient.dir + "/agent.json"))
        try patient.start()
        let adoptedRunning = try adopt("web2", into: patient)
        XCTAssertEqual(adoptedRunning.status, 0, adoptedRunning.stderr)
        let patientClient = try patient.client()
        let web2Status = try await patientClient.instance("web2")["status"]?.stringValue
        XCTAssertEqual(web2Status, "running")
        let before = try lab.domains()
        do {
            _ = try await patientClient.pollJob(try await patientClient.request(.PUT, "/2/instances/web2/shutdown").integerValue ?? -1)
            XCTFail("a guest that ignores the shutdown must not be forced off without --force-stop-after")
        } catch {
            XCTAssertTrue("\(error)".contains("not forced off"), "\(error)")
        }
        XCTAssertEqual(try lab.state("web2"), "running")
        XCTAssertEqual(try lab.domains(), before, "no domain changed")
        // Neither may remove it while it runs: nothing of it is deleted.
        do {
            _ = try await patientClient.pollJob(try await patientClient.request(.DELETE, "/2/instances/web2").integerValue ?? -1)
            XCTFail("a running instance must not be removed")
        } catch {
            XCTAssertTrue("\(error)".contains("still running"), "\(error)")
        }
        XCTAssertEqual(try lab.domains(), before)
        XCTAssertTrue(FileManager.default.fileExists(atPath: folder.file("web2.img")))
    }

    /// A whole move between two libvirt hosts with `gnt-move move`: the domain ends defined and
    /// running on the destination, its NIC on the bridge `--bridge-map` names, its disk byte for byte, and gone
    /// from the source; every other domain of either host is untouched.
    func testMoveBetweenTwoLibvirtHosts() async throws {
        let (hostA, hostB) = (try host("hosta"), try host("hostb"))
        let (sourceBridge, destinationBridge) = (try TestBridge("gmsrc0"), try TestBridge("gmdst0"))
        let disk0 = try image("web1-0.img", size: 24 << 20), disk1 = try image("web1-1.img", size: 3 << 20)
        let digests = try [disk0, disk1].map { try TestData.chunkedDigest($0) }
        try hostA.defineDomain("web1", memoryMiB: 128, vcpus: 2, disks: [disk0, disk1], bridges: [sourceBridge.name], start: true)
        try hostA.defineDomain("bystander", disks: [try image("bystander-a.img")], start: true)
        try hostB.defineDomain("bystander", disks: [try image("bystander-b.img")], start: false)
        let source = try agent("cluster-a", on: hostA, extra: ["--force-stop-after", "1"])
        // Software emulation (TCG) on the destination: no /dev/kvm needed.
        let destination = try agent("cluster-b", on: hostB, domainType: "qemu")
        let adopted = try adopt("web1", into: source)
        XCTAssertEqual(adopted.status, 0, adopted.stderr)
        let (othersA, othersB) = (try hostA.domains().filter { $0.key != "web1" }, try hostB.domains())

        let moved = try gntMove(arguments: source.moveArguments(to: destination, ["web1"], stateDir: folder.file("state"))
            + ["--bridge-map", "\(sourceBridge.name)=\(destinationBridge.name)"])
        XCTAssertEqual(moved.status, 0, moved.stdout + moved.stderr)

        XCTAssertNil(try hostA.state("web1"), "the source domain is gone")
        XCTAssertEqual(try hostB.state("web1"), "running")
        let xml = try hostB.virsh("dumpxml", "--inactive", "web1").stdout
        XCTAssertTrue(xml.hasPrefix("<domain type='qemu'>"), xml)
        XCTAssertTrue(xml.contains("<source bridge='\(destinationBridge.name)'/>"), xml)
        XCTAssertTrue(xml.contains("<memory unit='KiB'>131072</memory>"), xml)
        XCTAssertTrue(xml.contains(">2</vcpu>"), xml)
        for index in 0..<2 {
            let path = destination.dir + "/disks/web1.disk\(index)"
            XCTAssertTrue(xml.contains("<source file='\(path)'/>"), xml)
            XCTAssertEqual(try TestData.chunkedDigest(path), digests[index], "disk \(index) byte for byte")
        }
        let instance = try await destination.client().instance("web1")
        XCTAssertEqual(instance["status"]?.stringValue, "running")
        XCTAssertEqual(try hostA.domains(), othersA, "no other domain of the source host changed")
        XCTAssertEqual(try hostB.domains().filter { $0.key != "web1" }, othersB, "no other domain of the destination host changed")
        XCTAssertEqual(source.keyNames + destination.keyNames, [])

        // What an operator watches and reads: the bytes of each disk in /metrics, the jobs in the log.
        let received = try MetricsScrape(destination).samples().filter { $0.name == "gnt_move_disk_received_bytes_total" && $0.labels["instance"] == "web1" }
        XCTAssertEqual(received.sorted { ($0.labels["disk"] ?? "") < ($1.labels["disk"] ?? "") }.map(\.value), [Double(24 << 20), Double(3 << 20)])
        let sent = try MetricsScrape(source).samples().filter { $0.name == "gnt_move_disk_sent_bytes_total" && $0.labels["instance"] == "web1" }
        XCTAssertEqual(sent.map(\.value).reduce(0, +), Double(27 << 20))
        XCTAssertTrue(source.serverLog.contains("audit: gnt-move submitted job"), source.serverLog)
        XCTAssertTrue(source.serverLog.contains("INSTANCE_REMOVE(web1): success"), source.serverLog)
        XCTAssertTrue(destination.serverLog.contains("INSTANCE_CREATE(web1): success"), destination.serverLog)
    }

    /// A destination host that already has a domain of the instance's name: the move is refused
    /// before the source is stopped, and that domain (not the agent's) is untouched, as is the
    /// source's.
    func testADomainOfTheSameNameOnTheDestinationIsNeverTouched() async throws {
        let (hostA, hostB) = (try host("hosta"), try host("hostb"))
        let disk = try image("web1.img")
        try hostA.defineDomain("web1", disks: [disk], start: true)
        try hostB.defineDomain("web1", disks: [try image("theirs.img")], start: true)
        let source = try agent("cluster-a", on: hostA, extra: ["--force-stop-after", "1"])
        let destination = try agent("cluster-b", on: hostB)
        XCTAssertEqual(try adopt("web1", into: source).status, 0)
        let (domainsA, domainsB) = (try hostA.domains(), try hostB.domains())
        let snapshot = try await SystemSnapshot.take([source, destination], folder: folder)

        let preflight = try gntMove(arguments: source.moveArguments(to: destination, ["web1"], stateDir: folder.file("state")) + ["--preflight"])
        XCTAssertEqual(preflight.status, 1, preflight.stdout + preflight.stderr)
        XCTAssertTrue(preflight.stdout.contains("FAIL secret, name and space (destination dry run)") && preflight.stdout.contains("a libvirt domain named 'web1'"),
                      preflight.stdout)
        let moved = try gntMove(arguments: source.moveArguments(to: destination, ["web1"], stateDir: folder.file("state")))
        XCTAssertNotEqual(moved.status, 0)
        XCTAssertTrue((moved.stdout + moved.stderr).contains("a libvirt domain named 'web1'"), moved.stdout + moved.stderr)
        XCTAssertEqual(try hostA.domains(), domainsA, "the source domain runs on, unchanged")
        XCTAssertEqual(try hostB.domains(), domainsB, "the destination's own web1 is untouched")
        try await SystemSnapshot.take([source, destination], folder: folder).assertSame(as: snapshot, "a refused move")
    }

    /// A NIC libvirt cannot attach (Ganeti's routed mode) is refused by the destination's checks,
    /// before the source is stopped or anything is created.
    func testANICLibvirtCannotAttachIsRefusedBeforeAnythingHappens() async throws {
        let (hostA, hostB) = (try host("hosta"), try host("hostb"))
        let bridge = try TestBridge("gmsrc1")
        try hostA.defineDomain("web1", disks: [try image("web1.img")], bridges: [bridge.name], start: true)
        let source = try agent("cluster-a", on: hostA, extra: ["--force-stop-after", "1"])
        let destination = try agent("cluster-b", on: hostB)
        XCTAssertEqual(try adopt("web1", into: source).status, 0)
        let (domainsA, domainsB) = (try hostA.domains(), try hostB.domains())
        let snapshot = try await SystemSnapshot.take([source, destination], folder: folder)
        let moved = try gntMove(arguments: source.moveArguments(to: destination, ["web1"], stateDir: folder.file("state")) + ["--net", "0:mode=routed"])
        XCTAssertNotEqual(moved.status, 0)
        XCTAssertTrue((moved.stdout + moved.stderr).contains("NIC 0 of web1 (mode routed"), moved.stdout + moved.stderr)
        XCTAssertEqual(try hostA.domains(), domainsA, "the source domain runs on, unchanged")
        XCTAssertEqual(try hostB.domains(), domainsB)
        try await SystemSnapshot.take([source, destination], folder: folder).assertSame(as: snapshot, "a NIC libvirt cannot attach")
    }

    /// What cannot be adopted is refused with one line naming it, and nothing is recorded.
    func testAdoptionRefusals() async throws {
        let lab = try host("hosta")
        let qcow = folder.file("web1.qcow2")
        let made = try runProcess("/usr/bin/qemu-img", ["create", "-q", "-f", "qcow2", qcow, "8M"])
        XCTAssertEqual(made.status, 0, made.stderr)
        try lab.defineDomain("web1", disks: [qcow], format: "qcow2", start: false)
        let agent = try agent("cluster-a", on: lab)
        let snapshot = try await SystemSnapshot.take([agent], folder: folder)
        let qcowRefused = try adopt("web1", into: agent)
        XCTAssertNotEqual(qcowRefused.status, 0)
        XCTAssertTrue(qcowRefused.stderr.contains("disk vda (\(qcow)) is qcow2; only raw images can be moved"), qcowRefused.stderr)
        let missing = try adopt("nosuch", into: agent)
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("there is no libvirt domain 'nosuch'"), missing.stderr)
        let mixed = try adopt("web1", into: agent, extra: ["--disk", qcow])
        XCTAssertEqual(mixed.status, 64, mixed.stderr)
        let files = try gntMove(arguments: ["agent", "add-instance", "--dir", agent.dir, "web9", "--disk", folder.file("web1.qcow2")])
        XCTAssertNotEqual(files.status, 0)
        XCTAssertTrue(files.stderr.contains("adopt one with --domain NAME"), files.stderr)
        try await SystemSnapshot.take([agent], folder: folder).assertSame(as: snapshot, "refused adoptions")

        let fake = try AgentHarness(cluster: "cluster-f", secret: secret, folder: folder)
        let wrongDriver = try gntMove(arguments: ["agent", "add-instance", "--dir", fake.dir, "--domain", "web1"])
        XCTAssertNotEqual(wrongDriver.status, 0)
        XCTAssertTrue(wrongDriver.stderr.contains("--domain needs an agent whose hypervisor driver is libvirt"), wrongDriver.stderr)
        let badURI = try gntMove(arguments: ["agent", "init", "--dir", folder.file("bad"), "--cluster-name", "x", "--data-address", "127.0.0.1",
                                             "--hypervisor-driver", "libvirt", "--libvirt-uri", "not a uri"])
        XCTAssertNotEqual(badURI.status, 0)
        XCTAssertTrue(badURI.stderr.contains("'libvirtURI' is 'not a uri'"), badURI.stderr)
        let forceOnFake = try gntMove(arguments: ["agent", "init", "--dir", folder.file("bad2"), "--cluster-name", "x", "--data-address", "127.0.0.1",
                                                  "--hypervisor-driver", "fake", "--force-stop-after", "5"])
        XCTAssertNotEqual(forceOnFake.status, 0)
        XCTAssertTrue(forceOnFake.stderr.contains("'forceStopAfter' applies to the libvirt hypervisor driver only"), forceOnFake.stderr)
    }
}
