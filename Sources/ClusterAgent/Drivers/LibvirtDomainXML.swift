import Foundation
import FoundationXML
import MoveTrust

/// The libvirt domain XML of an instance: written from its spec when the destination defines
/// the domain, and read from an existing domain when an admin adopts it
/// (`agent add-instance --domain`).
enum LibvirtDomainXML {
    /// What an adopted domain holds, as the agent records it.
    struct Description: Equatable {
        var uuid: String
        var memoryMiB: Int64
        var vcpus: Int64
        /// Disk images or devices, in target order; only `device='disk'` entries.
        var disks: [String]
        var nics: [InstanceSpec.NIC]
    }

    /// The domain the instance runs as: its name, the record's UUID (by which the driver finds
    /// it), memory and vCPUs from the backend parameters, each disk as a raw virtio disk at its
    /// path, each NIC on its bridge (`link`) or libvirt network, with its MAC.
    static func definition(of record: InstanceRecord, type: AgentConfig.LibvirtDomainType) throws -> String {
        let spec = record.spec
        let memory = try parameter(spec.beparams["maxmem"] ?? spec.beparams["memory"], "memory", default: 512)
        let vcpus = try parameter(spec.beparams["vcpus"], "vcpus", default: 1)
        let domain = element("domain", ["type": type.rawValue])
        domain.addChild(XMLElement(name: "name", stringValue: record.name))
        domain.addChild(XMLElement(name: "uuid", stringValue: record.uuid))
        domain.addChild(element("memory", ["unit": "MiB"], text: String(memory)))
        domain.addChild(XMLElement(name: "vcpu", stringValue: String(vcpus)))
        let os = XMLElement(name: "os")
        os.addChild(element("type", ["arch": "x86_64"], text: "hvm"))
        os.addChild(element("boot", ["dev": "hd"]))
        domain.addChild(os)
        let features = XMLElement(name: "features")
        features.addChild(XMLElement(name: "acpi"))
        features.addChild(XMLElement(name: "apic"))
        domain.addChild(features)
        let devices = XMLElement(name: "devices")
        for (index, path) in record.diskPaths.enumerated() {
            var info = stat()
            let block = stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFBLK
            let disk = element("disk", ["type": block ? "block" : "file", "device": "disk"])
            disk.addChild(element("driver", ["name": "qemu", "type": "raw"]))
            disk.addChild(element("source", [block ? "dev" : "file": path]))
            disk.addChild(element("target", ["dev": targetName(index), "bus": "virtio"]))
            devices.addChild(disk)
        }
        for (index, nic) in spec.nics.enumerated() {
            let interface: XMLElement
            if let network = nic.network, !network.isEmpty {
                interface = element("interface", ["type": "network"])
                interface.addChild(element("source", ["network": network]))
            } else if let link = nic.link, !link.isEmpty, nic.mode == nil || nic.mode == "bridged" || nic.mode == "openvswitch" {
                interface = element("interface", ["type": "bridge"])
                interface.addChild(element("source", ["bridge": link]))
                if nic.mode == "openvswitch" { interface.addChild(element("virtualport", ["type": "openvswitch"])) }
            } else {
                throw AgentError.wrongInput("NIC \(index) of \(record.name) (mode \(nic.mode ?? "bridged"), link '\(nic.link ?? "")') cannot be given to libvirt: "
                    + "it needs a bridge (link, mode bridged or openvswitch) or a network; map it with --bridge-map or --net")
            }
            if let mac = nic.mac, !mac.isEmpty { interface.addChild(element("mac", ["address": mac])) }
            interface.addChild(element("model", ["type": "virtio"]))
            devices.addChild(interface)
        }
        devices.addChild(element("serial", ["type": "pty"]))
        devices.addChild(element("console", ["type": "pty"]))
        devices.addChild(element("graphics", ["type": "vnc", "autoport": "yes", "listen": "127.0.0.1"]))
        domain.addChild(devices)
        return XMLDocument(rootElement: domain).xmlString(options: [.nodePrettyPrint])
    }

    /// Reads an existing domain's definition. A disk that is not a raw file or a block device
    /// (qcow2, a network disk) is refused: its bytes are not the disk the guest sees.
    static func describe(_ xml: String, domain name: String) throws -> Description {
        let document: XMLDocument
        do { document = try XMLDocument(xmlString: xml) } catch {
            throw AgentError.execution("the definition of domain \(name) is not XML libvirt would write: \(error)")
        }
        func values(_ path: String) -> [String] { ((try? document.nodes(forXPath: path)) ?? []).compactMap(\.stringValue) }
        guard let uuid = values("/domain/uuid").first?.trimmingCharacters(in: .whitespaces), UUID(uuidString: uuid) != nil else {
            throw AgentError.execution("domain \(name) has no UUID in its definition")
        }
        guard let memoryText = values("/domain/memory").first, let amount = Int64(memoryText.trimmingCharacters(in: .whitespaces)) else {
            throw AgentError.execution("domain \(name) has no memory size in its definition")
        }
        let unit = values("/domain/memory/@unit").first ?? "KiB"
        guard let memoryMiB = mebibytes(amount, unit: unit) else { throw AgentError.execution("domain \(name): memory unit '\(unit)' is not one libvirt writes") }
        let vcpus = Int64(values("/domain/vcpu").first?.trimmingCharacters(in: .whitespaces) ?? "1") ?? 1
        var disks: [String] = []
        let diskNodes = ((try? document.nodes(forXPath: "/domain/devices/disk[@device='disk']")) ?? []).compactMap { $0 as? XMLElement }
        for disk in diskNodes {
            let target = disk.elements(forName: "target").first?.attribute(forName: "dev")?.stringValue ?? "?"
            let type = disk.attribute(forName: "type")?.stringValue ?? ""
            let format = disk.elements(forName: "driver").first?.attribute(forName: "type")?.stringValue ?? "raw"
            let source = disk.elements(forName: "source").first
            guard type == "file" || type == "block", let path = source?.attribute(forName: type == "file" ? "file" : "dev")?.stringValue, path.hasPrefix("/") else {
                throw AgentError.wrongInput("domain \(name): disk \(target) is a '\(type)' disk; only raw image files and block devices can be moved")
            }
            guard format == "raw" else {
                throw AgentError.wrongInput("domain \(name): disk \(target) (\(path)) is \(format); only raw images can be moved (qemu-img convert -O raw, then point the domain at the copy)")
            }
            disks.append(path)
        }
        guard !disks.isEmpty else { throw AgentError.wrongInput("domain \(name) has no disk to move") }
        var nics: [InstanceSpec.NIC] = []
        let interfaces = ((try? document.nodes(forXPath: "/domain/devices/interface")) ?? []).compactMap { $0 as? XMLElement }
        for interface in interfaces {
            var nic = InstanceSpec.NIC()
            nic.mac = interface.elements(forName: "mac").first?.attribute(forName: "address")?.stringValue
            let source = interface.elements(forName: "source").first
            switch interface.attribute(forName: "type")?.stringValue {
            case "bridge":
                nic.mode = interface.elements(forName: "virtualport").first?.attribute(forName: "type")?.stringValue == "openvswitch" ? "openvswitch" : "bridged"
                nic.link = source?.attribute(forName: "bridge")?.stringValue
            case "network":
                nic.network = source?.attribute(forName: "network")?.stringValue
            case let other:
                throw AgentError.wrongInput("domain \(name): interface \(nic.mac ?? "") is of type '\(other ?? "none")'; only bridge and network interfaces can be moved")
            }
            nics.append(nic)
        }
        return Description(uuid: uuid.lowercased(), memoryMiB: memoryMiB, vcpus: vcpus, disks: disks, nics: nics)
    }

    /// `vda`, …, `vdz`, `vdaa`, …: libvirt's target names by index.
    static func targetName(_ index: Int) -> String {
        let letters = Array("abcdefghijklmnopqrstuvwxyz")
        var name = ""
        var rest = index
        repeat {
            name = String(letters[rest % 26]) + name
            rest = rest / 26 - 1
        } while rest >= 0
        return "vd" + name
    }

    static func mebibytes(_ amount: Int64, unit: String) -> Int64? {
        let shifts: [String: Int64] = ["b": -20, "bytes": -20, "k": -10, "KiB": -10, "M": 0, "MiB": 0, "G": 10, "GiB": 10, "T": 20, "TiB": 20]
        guard let shift = shifts[unit], amount >= 0 else { return nil }
        if shift < 0 { return amount >> -shift }
        let (value, overflow) = amount.multipliedReportingOverflow(by: 1 << shift)
        return overflow ? nil : value
    }

    /// A positive integer backend parameter, which Ganeti may send as a number or a string.
    static func parameter(_ value: JSONValue?, _ key: String, default fallback: Int64) throws -> Int64 {
        guard let value else { return fallback }
        if let number = value.integerValue ?? value.stringValue.flatMap({ Int64($0) }), number > 0, number <= 1 << 30 { return number }
        throw AgentError.wrongInput("backend parameter '\(key)' is \(value.serialized); expected a positive integer")
    }

    private static func element(_ name: String, _ attributes: [String: String], text: String? = nil) -> XMLElement {
        let node = text.map { XMLElement(name: name, stringValue: $0) } ?? XMLElement(name: name)
        node.setAttributesWith(attributes)
        return node
    }
}
