import AgentTestSupport
import ClusterAgent
import Foundation
import MoveCoordinator
import MoveTrust
import TestSupport
import XCTest

/// The `block` storage backend, its LVM commands pointed at scripts that make loop devices (this
/// kernel has no device-mapper), as the destination of a move driven over RAPI.
final class AgentBlockBackendTests: XCTestCase {
    func testMoveIntoLogicalVolumesOnLoopDevices() async throws {
        guard (try? runProcess("/sbin/losetup", ["-f"]))?.status == 0 else { throw XCTSkip("no loop devices here") }
        let folder = TemporaryDirectory("block")
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        let source = try AgentHarness(cluster: "cluster-s", secret: secret, folder: folder)
        let destination = try AgentHarness(cluster: "cluster-d", secret: secret, folder: folder)
        let group = "gntmovetest\(UInt32.random(in: 0...UInt32.max))"
        let state = folder.file("lvm")
        try FileManager.default.createDirectory(atPath: state, withIntermediateDirectories: true)
        let lvcreate = folder.write("fake-lvcreate", """
        #!/bin/bash
        # fake-lvcreate -L <size>m -n <name> <vg>: a loop device over a file, linked as /dev/<vg>/<name>
        set -e
        size=${2%m}; name=$4; vg=$5
        truncate -s "${size}M" "\(state)/$name.img"
        dev=$(losetup -f --show "\(state)/$name.img")
        mkdir -p "/dev/$vg"
        ln -sf "$dev" "/dev/$vg/$name"
        """, mode: 0o755)
        let lvremove = folder.write("fake-lvremove", """
        #!/bin/bash
        # fake-lvremove -f /dev/<vg>/<name>
        set -e
        dev=$(readlink -f "$2")
        losetup -d "$dev"
        rm -f "$2" "\(state)/$(basename "$2").img"
        rmdir --ignore-fail-on-non-empty "$(dirname "$2")"
        """, mode: 0o755)
        let configPath = destination.dir + "/agent.json"
        var config = try JSONDecoder().decode(AgentConfig.self, from: Data(contentsOf: URL(fileURLWithPath: configPath)))
        config.storageBackend = .block
        config.volumeGroup = group
        config.lvcreateCommand = lvcreate
        config.lvremoveCommand = lvremove
        config.vgFreeCommand = "echo 1073741824 #"
        config.enabledDiskTemplates = ["plain", "file"]
        try JSONEncoder().encode(config).write(to: URL(fileURLWithPath: configPath))
        try source.start()
        try destination.start()
        defer { source.stop(); destination.stop() }

        let image = folder.file("vol1.img")
        try TestData.writeSparse(image, size: 24 << 20, dataRanges: [(1 << 20, 2 << 20), (20 << 20, 1 << 20)])
        try source.addInstance("vol1", disks: [image])
        let src = try source.client()
        let dst = try destination.client()
        let prepared = try await src.pollJob(try await src.prepareExport("vol1"))
        let createJob = try await dst.createInstance(.object([
            "__version__": .int(1), "mode": .string("remote-import"), "name": .string("vol1"), "disk_template": .string("plain"),
            "disks": .array([.object(["size": .int(24), "mode": .string("rw")])]), "hypervisor": .string("kvm"), "start": .bool(false),
            "source_handshake": prepared["handshake"] ?? .null, "source_x509_ca": prepared["x509_ca"] ?? .null,
            "source_instance_name": .string("vol1"),
        ]))
        let handshake = try await destination.awaitRemoteImport(createJob)
        let exported = try await src.pollJob(try await src.exportInstance("vol1", body: .object([
            "mode": .string("remote"), "destination": handshake?["disks"] ?? .null, "shutdown": .bool(true), "remove_instance": .bool(false),
            "x509_key_name": prepared["x509_key_name"] ?? .null, "destination_x509_ca": handshake?["x509_ca"] ?? .null,
        ])))
        XCTAssertEqual(exported, .array([.bool(true), .array([.bool(true)])]))
        _ = try await dst.pollJob(createJob)
        XCTAssertEqual(try TestData.sha256("\(state)/vol1.disk0.img"), try TestData.sha256(image), "the logical volume holds the disk")
        let info = try await dst.pollJob(try await dst.instanceInfo("vol1"))
        XCTAssertEqual(info["vol1"]?["disks"]?.arrayValue?.first?["logical_id"], .array([.string("/dev/\(group)/vol1.disk0")]))

        _ = try await dst.pollJob(try await dst.deleteInstance("vol1"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/dev/\(group)/vol1.disk0"), "lvremove ran")
        XCTAssertFalse(FileManager.default.fileExists(atPath: "\(state)/vol1.disk0.img"))
    }
}
