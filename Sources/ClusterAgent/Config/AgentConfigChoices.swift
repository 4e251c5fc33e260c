/// A closed set of `agent.json`: any other value fails when the file is loaded, naming the key
/// and the accepted values (see ``AgentPaths/loadConfig()``).
public protocol AgentConfigChoice: RawRepresentable<String>, CaseIterable, Codable, Sendable, CustomStringConvertible {}

extension AgentConfigChoice {
    /// The value as `agent.json` spells it (`xen-pvm`, not `xenPVM`).
    public var description: String { rawValue }

    /// The accepted values, for messages that list them.
    public static var acceptedNames: String { allCases.map(\.rawValue).joined(separator: ", ") }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let value = Self(rawValue: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "is '\(text)'; expected one of \(Self.acceptedNames)")
        }
        self = value
    }
}

extension AgentConfig {
    /// How instances are started and stopped. `fake` only records state (demos and tests);
    /// `command` runs the start/stop/status commands; `libvirt` keeps each instance as a libvirt
    /// domain (through `virsh`).
    public enum HypervisorDriverKind: String, AgentConfigChoice {
        case fake, command, libvirt
    }

    /// The `type` of the libvirt domains the agent defines: `kvm` needs /dev/kvm, `qemu` is
    /// software emulation (TCG).
    public enum LibvirtDomainType: String, AgentConfigChoice {
        case kvm, qemu
    }

    /// Where disks live: `file` (sparse images in DIR/disks) or `block` (device paths; LVM
    /// through commands).
    public enum StorageBackendKind: String, AgentConfigChoice {
        case file, block
    }

    /// Ganeti's hypervisor names, one of which the agent's instances are reported under.
    public enum Hypervisor: String, AgentConfigChoice {
        case kvm
        case xenPVM = "xen-pvm"
        case xenHVM = "xen-hvm"
        case lxc, chroot, fake
    }
}
