import Foundation
import TestSupport
import XCTest

/// A real libvirt host for the tests: one libvirtd with its own domains, host name and UUID,
/// in namespaces of its own (`Tests/LibvirtLab/libvirt-lab`), running real QEMU.
public final class LibvirtLab: @unchecked Sendable {
    static let script = Repository.path("Tests/LibvirtLab/libvirt-lab")
    public let root: String
    /// The connection URI an agent's `--libvirt-uri` names.
    public let uri: String

    /// Skips the test where libvirt cannot run (not root, packages missing: scripts/setup
    /// installs them).
    public static func requireAvailable() throws {
        guard getuid() == 0 else { throw XCTSkip("libvirt labs need root") }
        for tool in ["virsh", "libvirtd", "virtlogd", "qemu-system-x86_64"] where which(tool) == nil && !FileManager.default.isExecutableFile(atPath: "/usr/sbin/" + tool) {
            throw XCTSkip("\(tool) is not installed (scripts/setup installs libvirt and QEMU)")
        }
    }

    public init(_ name: String) throws {
        root = "/tmp/gnt-move-libvirt-\(name)-\(UUID().uuidString.prefix(8))"
        let started = try runProcess(Self.script, ["start", root, name])
        guard started.status == 0 else { throw TestFailure("libvirt lab \(name) did not start: \(started.stderr)") }
        uri = started.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    public func stop() {
        _ = try? runProcess(Self.script, ["stop", root])
        try? FileManager.default.removeItem(atPath: root)
    }

    deinit { stop() }

    /// Runs virsh on this host.
    public func virsh(_ arguments: String...) throws -> ProcessResult {
        try runProcess(which("virsh") ?? "/usr/bin/virsh", ["-q", "-c", uri] + arguments)
    }

    /// A domain's state (`running`, `shut off`), or nil when there is none.
    public func state(_ domain: String) throws -> String? {
        let result = try virsh("domstate", domain)
        return result.status == 0 ? result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }

    /// Every domain with its UUID, state and persistent definition: what a test that must not
    /// touch other domains compares before and after.
    public func domains() throws -> [String: String] {
        var all: [String: String] = [:]
        for name in try virsh("list", "--all", "--name").stdout.split(separator: "\n").map(String.init) where !name.isEmpty {
            all[name] = "\(try virsh("domuuid", name).stdout)\(try state(name) ?? "?")\n\(try virsh("dumpxml", "--inactive", name).stdout)"
        }
        return all
    }

    /// Defines (and starts) a minimal domain: memory in MiB, one raw virtio disk per image, one
    /// bridge NIC per bridge, serial to a file. With no OS on its disks it still runs, and it
    /// ignores an ACPI shutdown.
    public func defineDomain(_ name: String, memoryMiB: Int = 96, vcpus: Int = 1, disks: [String], format: String = "raw",
                             bridges: [String] = [], start: Bool) throws {
        var devices = ""
        for (index, disk) in disks.enumerated() {
            let target = "vd" + String(UnicodeScalar(UInt8(97 + index)))
            devices += "<disk type='file' device='disk'><driver name='qemu' type='\(format)'/><source file='\(disk)'/><target dev='\(target)' bus='virtio'/></disk>\n"
        }
        for bridge in bridges {
            devices += "<interface type='bridge'><source bridge='\(bridge)'/><model type='virtio'/></interface>\n"
        }
        devices += "<serial type='file'><source path='\(root)/\(name).serial'/></serial>\n"
        let type = FileManager.default.fileExists(atPath: "/dev/kvm") ? "kvm" : "qemu"
        let xml = """
            <domain type='\(type)'><name>\(name)</name><memory unit='MiB'>\(memoryMiB)</memory><vcpu>\(vcpus)</vcpu>
            <os><type arch='x86_64'>hvm</type></os><features><acpi/></features><devices>\(devices)</devices></domain>
            """
        let file = root + "/\(name).xml"
        try xml.write(toFile: file, atomically: true, encoding: .utf8)
        let defined = try virsh("define", file)
        guard defined.status == 0 else { throw TestFailure("virsh define \(name): \(defined.stderr)") }
        if start {
            let started = try virsh("start", name)
            guard started.status == 0 else { throw TestFailure("virsh start \(name): \(started.stderr)") }
        }
    }

    /// The domain type a test agent defines: kvm where /dev/kvm exists, else qemu (TCG).
    public static var domainType: String { FileManager.default.fileExists(atPath: "/dev/kvm") ? "kvm" : "qemu" }
}

/// A Linux bridge for the duration of a test (a libvirt NIC needs one to start).
public final class TestBridge: @unchecked Sendable {
    public let name: String
    public init(_ name: String) throws {
        self.name = name
        _ = try? runProcess("/usr/sbin/ip", ["link", "del", name])
        for arguments in [["link", "add", name, "type", "bridge"], ["link", "set", name, "up"]] {
            let result = try runProcess("/usr/sbin/ip", arguments)
            guard result.status == 0 else { throw TestFailure("ip \(arguments.joined(separator: " ")): \(result.stderr)") }
        }
    }
    deinit { _ = try? runProcess("/usr/sbin/ip", ["link", "del", name]) }
}
