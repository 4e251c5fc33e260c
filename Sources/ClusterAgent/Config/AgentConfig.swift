import BlockStream
import Foundation
import MoveTrust

/// An agent's configuration, `DIR/agent.json`, written by `gnt-move agent init`.
public struct AgentConfig: Codable, Sendable, Equatable {
    public var clusterName: String
    /// The node this agent runs instances on (one node per agent).
    public var nodeName: String
    public var bindAddress: String
    public var port: Int
    /// Published in disk info: where the source's exporters connect.
    public var dataAddress: String
    public var storageBackend: StorageBackendKind
    public var hypervisor: Hypervisor
    public var hypervisorDriver: HypervisorDriverKind
    public var startCommand: String?
    public var stopCommand: String?
    public var statusCommand: String?
    /// LVM, for the block backend: volume group and the create/remove commands.
    public var volumeGroup: String?
    public var lvcreateCommand: String
    public var lvremoveCommand: String
    /// Prints the volume group's free bytes; `%s` is the group.
    public var vgFreeCommand: String
    public var enabledDiskTemplates: [String]
    /// Where OS definitions live (Ganeti's OS API), each in a folder of its name.
    public var osSearchPath: [String]
    /// Pending imports older than this are cleaned up by the sweep.
    public var pendingImportMaxAge: Double
    /// How long an importer waits for its exporter.
    public var importConnectTimeout: Double
    /// The `gnt-move` executable for the import/export daemons (default: the agent's own).
    public var importExportCommand: String?
    /// Refuse every remote import that does not carry a signed instance spec (for sites whose
    /// sources are all gnt-move agents), so a relay cannot simply drop the spec. Default: off,
    /// so that Ganeti clusters can still be sources.
    public var requireSignedSpec: Bool?
    /// Which parts of a signed spec a move request may override (see ``SpecOverrides/Group``):
    /// `name`, `nics`, `beparams`, `hvparams`, `osparams`, `disk_template`. Default:
    /// ``AgentConfig/defaultOverridePolicy``.
    public var overridePolicy: [String]?
    /// How long an export waits for the instance to be confirmed off before it reads a disk.
    public var stopTimeout: Double?
    /// Seconds each host command may run before it is stopped (SIGTERM, then SIGKILL; see
    /// ``HostCommand``). Defaults: start and stop 300, status 30, each LVM command 120, the OS
    /// rename script 600.
    public var startCommandTimeout: Double?
    public var stopCommandTimeout: Double?
    public var statusCommandTimeout: Double?
    public var storageCommandTimeout: Double?
    public var renameScriptTimeout: Double?
    /// gnt-move/1 disk transfers: how long a broken data connection may take to come back
    /// before the transfer fails (the exporter reconnects and continues from the importer's
    /// journal). Default 120 s.
    public var transferReconnectWindow: Double?
    /// libvirt driver: the connection URI (default `qemu:///system`).
    public var libvirtURI: String?
    /// libvirt driver: the domain type of the domains the agent defines, `kvm` (default) or
    /// `qemu` (TCG, no hardware virtualization).
    public var libvirtDomainType: LibvirtDomainType?
    /// libvirt driver: seconds after an ACPI shutdown at which a domain still running is forced
    /// off (`virsh destroy`). Unset: never forced; the stop fails after `stopCommandTimeout`.
    public var forceStopAfter: Double?
    /// Ports the import daemons listen on, `LOW-HIGH` (for firewalls; each daemon takes the
    /// first free one). Default: a port the kernel picks.
    public var dataPortRange: String?

    /// Every key of `agent.json`; any other key fails when the file is loaded, naming it.
    /// Spelled out so that the keys can be listed: a case that names no property does not
    /// compile, and a new property needs its case here to be read at all.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case clusterName, nodeName, bindAddress, port, dataAddress, storageBackend, hypervisor, hypervisorDriver
        case startCommand, stopCommand, statusCommand, volumeGroup, lvcreateCommand, lvremoveCommand, vgFreeCommand
        case enabledDiskTemplates, osSearchPath, pendingImportMaxAge, importConnectTimeout, importExportCommand
        case requireSignedSpec, overridePolicy, stopTimeout
        case startCommandTimeout, stopCommandTimeout, statusCommandTimeout, storageCommandTimeout, renameScriptTimeout
        case transferReconnectWindow
        case libvirtURI, libvirtDomainType, forceStopAfter
        case dataPortRange
    }

    /// A new name, NIC mapping and memory/CPU sizing are what a move legitimately changes;
    /// hypervisor and OS parameters (kernel paths, OS script inputs) and the disk template are not.
    public static let defaultOverridePolicy = ["name", "nics", "beparams"]
    public var effectiveOverridePolicy: [String] { overridePolicy ?? Self.defaultOverridePolicy }
    public var effectiveStopTimeout: Double { stopTimeout ?? 300 }
    public var effectiveStartCommandTimeout: Double { startCommandTimeout ?? 300 }
    public var effectiveStopCommandTimeout: Double { stopCommandTimeout ?? 300 }
    public var effectiveStatusCommandTimeout: Double { statusCommandTimeout ?? 30 }
    public var effectiveStorageCommandTimeout: Double { storageCommandTimeout ?? 120 }
    public var effectiveRenameScriptTimeout: Double { renameScriptTimeout ?? 600 }
    public var effectiveTransferReconnectWindow: Double { transferReconnectWindow ?? 120 }
    public var effectiveLibvirtURI: String { libvirtURI ?? "qemu:///system" }

    public init(clusterName: String, nodeName: String, bindAddress: String = "0.0.0.0", port: Int = 5080,
                dataAddress: String = "127.0.0.1") {
        self.clusterName = clusterName
        self.nodeName = nodeName
        self.bindAddress = bindAddress
        self.port = port
        self.dataAddress = dataAddress
        storageBackend = .file
        hypervisor = .kvm
        hypervisorDriver = .fake
        lvcreateCommand = "lvcreate"
        lvremoveCommand = "lvremove"
        vgFreeCommand = "vgs --noheadings --units b --nosuffix -o vg_free %s"
        enabledDiskTemplates = ["file", "plain", "blockdev"]
        osSearchPath = []
        pendingImportMaxAge = 3600
        importConnectTimeout = 300
    }
}

/// The files of one agent under its directory.
public struct AgentPaths: Sendable {
    public let root: String
    public init(root: String) { self.root = root }

    /// Where an agent lives when no `--dir` is given: Debian's place for a service's state, the
    /// directory the shipped `gnt-move-agent.service` serves.
    public static let defaultRoot = "/var/lib/gnt-move/agent"

    public var config: String { root + "/agent.json" }
    public var secret: String { root + "/cluster-domain-secret" }
    /// Key and certificate of the HTTPS API in one PEM file, as Ganeti's `rapi.pem`.
    public var rapiPEM: String { root + "/rapi.pem" }
    /// The RAPI certificate alone, to give to clients as their CA file.
    public var rapiCertificate: String { Self.certificatePath(forPEM: rapiPEM) }
    static func certificatePath(forPEM pem: String) -> String { String(pem.dropLast(4)) + ".crt" }
    public var users: String { root + "/users" }
    public var database: String { root + "/state.sqlite" }
    public var disks: String { root + "/disks" }
    public var crypto: String { root + "/crypto" }
    public var importExport: String { root + "/import-export" }

    public func loadConfig() throws -> AgentConfig {
        guard let data = FileManager.default.contents(atPath: config) else {
            throw AgentError.configuration("no agent configuration at \(config); run 'gnt-move agent init' first")
        }
        // A misspelt key would otherwise be ignored, its setting silently the default.
        if case .object(let fields)? = try? JSONValue(parsing: Array(data)) {
            let known = Set(AgentConfig.CodingKeys.allCases.map(\.stringValue))
            if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
                throw AgentError.configuration("\(config): '\(unknown)' is not a known key; expected one of \(AgentConfig.CodingKeys.allCases.map(\.stringValue).joined(separator: ", "))")
            }
        }
        let decoded: AgentConfig
        do {
            decoded = try JSONDecoder().decode(AgentConfig.self, from: data)
        } catch let error as DecodingError {
            throw AgentError.configuration(AgentConfig.describe(error, path: config))
        } catch {
            throw AgentError.configuration("\(config) is not a valid agent configuration: \(error)")
        }
        try decoded.validate(path: config)
        return decoded
    }
}

extension AgentConfig {
    /// A file that does not decode, worded as ``validate(path:)`` words its refusals: the key
    /// first. The closed sets (``AgentConfigChoice``) fail here.
    static func describe(_ error: DecodingError, path: String) -> String {
        func key(_ codingPath: [any CodingKey]) -> String { codingPath.map(\.stringValue).joined(separator: ".") }
        switch error {
        case .dataCorrupted(let context) where !context.codingPath.isEmpty:
            return "\(path): '\(key(context.codingPath))' \(context.debugDescription)"
        case .keyNotFound(let missing, let context):
            return "\(path): '\(key(context.codingPath + [missing]))' is missing"
        case .typeMismatch(let type, let context) where !context.codingPath.isEmpty:
            return "\(path): '\(key(context.codingPath))' is not of type \(type)"
        case .valueNotFound(_, let context) where !context.codingPath.isEmpty:
            return "\(path): '\(key(context.codingPath))' is null"
        default:
            return "\(path) is not a valid agent configuration: \(error)"
        }
    }

    /// Checks what decoding cannot: the names that reach commands and the driver's needs; each
    /// error names the key.
    func validate(path: String) throws {
        func refuse(_ key: String, _ why: String) -> AgentError { AgentError.configuration("\(path): '\(key)' \(why)") }
        for group in effectiveOverridePolicy where SpecOverrides.Group(rawValue: group) == nil {
            throw refuse("overridePolicy", "names '\(group)'; expected some of \(SpecOverrides.Group.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        if let volumeGroup, !NameRules.isValid(volumeGroup, .volumeGroup) { throw refuse("volumeGroup", "is not a valid volume group name") }
        guard NameRules.isValid(nodeName, .hostname) else { throw refuse("nodeName", "is not a valid host name") }
        let timeouts: [(String, Double?)] = [
            ("stopTimeout", stopTimeout), ("startCommandTimeout", startCommandTimeout), ("stopCommandTimeout", stopCommandTimeout),
            ("statusCommandTimeout", statusCommandTimeout), ("storageCommandTimeout", storageCommandTimeout),
            ("renameScriptTimeout", renameScriptTimeout), ("transferReconnectWindow", transferReconnectWindow),
            ("forceStopAfter", forceStopAfter),
        ]
        for case let (key, seconds?) in timeouts where !(seconds > 0 && seconds <= 86_400) {
            throw refuse(key, "is \(HostCommand.seconds(seconds)); expected seconds above 0, at most 86400")
        }
        if let dataPortRange {
            do { _ = try PortRange(parsing: dataPortRange) } catch { throw refuse("dataPortRange", "is '\(dataPortRange)': \(error.reason)") }
        }
        if hypervisorDriver == .command, startCommand == nil || stopCommand == nil || statusCommand == nil {
            throw refuse("hypervisorDriver", "is 'command', which needs startCommand, stopCommand and statusCommand (the status command must exit 0 only while the instance runs)")
        }
        if hypervisorDriver != .libvirt {
            for (key, set) in [("libvirtURI", libvirtURI != nil), ("libvirtDomainType", libvirtDomainType != nil), ("forceStopAfter", forceStopAfter != nil)] where set {
                throw refuse(key, "applies to the libvirt hypervisor driver only (hypervisorDriver is '\(hypervisorDriver)')")
            }
        }
        if let libvirtURI, libvirtURI.isEmpty || libvirtURI.contains(where: { $0.isWhitespace || $0.isNewline }) || !libvirtURI.contains(":") {
            throw refuse("libvirtURI", "is '\(libvirtURI)'; expected a libvirt connection URI such as qemu:///system")
        }
    }
}
