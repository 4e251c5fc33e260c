import ArgumentParser
import BlockStream
import ClusterAgent
import Foundation
import MoveCoordinator
import MoveTrust

struct AgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "agent",
        abstract: "A cluster's agent: the RAPI subset a move needs, served over HTTPS.",
        subcommands: [Init.self, Serve.self, AddInstance.self])

    struct Init: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create an agent directory: config, secret, rapi.pem, users file, SQLite state, disks folder.")

        @Option(help: "Agent directory to create (it must not hold an agent yet).") var dir = AgentPaths.defaultRoot
        @Option(name: .customLong("cluster-name"), help: "This cluster's name.") var clusterName: String
        @Option(help: "Port the HTTPS RAPI server listens on.") var port = 5080
        @Option(help: "Address the HTTPS RAPI server listens on.") var bind = "0.0.0.0"
        @Option(name: .customLong("data-address"),
                help: "Address the import daemons listen on and publish in the signed disk info (default: the --bind address, or with a wildcard --bind the node name's first non-loopback address).")
        var dataAddress: String?
        @Option(name: .customLong("data-ports"),
                help: ArgumentHelp("Ports the import daemons listen on, for firewalls: each takes the first free one (default: a port the kernel picks).", valueName: "LOW-HIGH"))
        var dataPorts: String?
        @Option(name: .customLong("node-name"), help: "This node's name (default: the host's FQDN).") var nodeName: String?
        @Option(help: ArgumentHelp("Use this cluster domain secret instead of making one.", valueName: "FILE")) var secret: String?
        @Option(help: "RAPI user with write access (default: 'gnt-move' with a generated password in DIR/password).") var user: String?
        @Option(name: .customLong("password-file"), help: ArgumentHelp("The user's password (with no --user: the 'gnt-move' user's).", valueName: "FILE"))
        var passwordFile: String?
        @Option(name: .customLong("hypervisor-driver"),
                help: "How instances are started and stopped: 'libvirt' (libvirt domains, through virsh), 'command' (the --start/--stop/--status-command) or 'fake' (demos and tests: no VM runs).")
        var hypervisorDriver: AgentConfig.HypervisorDriverKind
        @Option(help: "The hypervisor the cluster's instances run under, as Ganeti names it: a move keeps it, so both ends must agree.")
        var hypervisor = AgentConfig.Hypervisor.kvm
        @Option(name: .customLong("start-command"), help: "command driver: starts an instance (%s is its name).") var startCommand: String?
        @Option(name: .customLong("stop-command"), help: "command driver: stops an instance (%s is its name).") var stopCommand: String?
        @Option(name: .customLong("status-command"), help: "command driver: exits 0 only while the instance runs (%s is its name).") var statusCommand: String?
        @Option(name: .customLong("libvirt-uri"), help: "libvirt driver: the connection URI (default: qemu:///system).") var libvirtURI: String?
        @Option(name: .customLong("libvirt-domain-type"), help: "libvirt driver: the type of the domains a move defines: kvm, or qemu for software emulation (default: kvm).")
        var libvirtDomainType: AgentConfig.LibvirtDomainType?
        @Option(name: .customLong("force-stop-after"),
                help: ArgumentHelp("libvirt driver: force a domain off (virsh destroy) this many seconds after an ACPI shutdown it ignored (default: never; the stop fails).", valueName: "SECONDS"))
        var forceStopAfter: Double?
        @Flag(name: .customLong("require-signed-spec"), help: "Refuse remote imports without a signed instance spec (every source is a gnt-move agent).")
        var requireSignedSpec = false

        func execute() throws {
            var options = AgentInitializer.Options(clusterName: clusterName, hypervisorDriver: hypervisorDriver)
            options.startCommand = startCommand
            options.stopCommand = stopCommand
            options.statusCommand = statusCommand
            (options.libvirtURI, options.libvirtDomainType, options.forceStopAfter) = (libvirtURI, libvirtDomainType, forceStopAfter)
            options.requireSignedSpec = requireSignedSpec
            options.hypervisor = hypervisor
            options.port = port
            options.bind = bind
            options.dataAddress = dataAddress
            options.dataPortRange = dataPorts
            if let nodeName { options.nodeName = nodeName }
            options.secretFile = secret
            options.user = user
            options.passwordFile = passwordFile
            // Absolute, so that agent.json's paths hold wherever the agent is started from.
            let root = URL(fileURLWithPath: dir).standardizedFileURL.path
            let password = try AgentInitializer.initialize(paths: AgentPaths(root: root), options: options)
            print("agent for cluster \(clusterName) initialised in \(dir)")
            let published = try AgentInitializer.dataAddress(for: options)
            if NetworkNames.isLoopback(published) && !NetworkNames.isLoopback(bind) {
                Console.error("warning: the data address \(published) is loopback: only sources on this host can send disks here (see --data-address)")
            }
            if password != nil { print("RAPI user 'gnt-move' with write access; its password is in \(dir)/password") }
        }
    }

    struct Serve: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Run the agent's HTTPS RAPI server.")
        @Option(help: "Agent directory (made by 'agent init').") var dir = AgentPaths.defaultRoot

        func run() async throws {
            do {
                let service = try ClusterAgentService(paths: AgentPaths(root: dir))
                try await AgentServer.run(service: service) { port in
                    Console.error("gnt-move agent for cluster \(service.config.clusterName) listening on \(service.config.bindAddress):\(port)")
                }
            } catch {
                Console.error("gnt-move: \(error)")
                throw ExitCode(1)
            }
        }
    }

    struct AddInstance: AsyncReportingCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-instance",
            abstract: "Adopt a libvirt domain, or existing image files or block devices, as an instance.")

        @Option(help: "Agent directory (made by 'agent init').") var dir = AgentPaths.defaultRoot
        @Argument(help: "Name of the new instance (with --domain: default the domain's name).") var name: String?
        @Option(help: ArgumentHelp("libvirt driver: adopt this domain; its memory, vCPUs, raw disks, NICs and state are read from libvirt.", valueName: "NAME"))
        var domain: String?
        @Option(help: ArgumentHelp("A disk image or device, in order (repeat for more disks).", valueName: "PATH")) var disk: [String] = []
        @Option(help: "Memory in MiB (default: 512).") var memory: Int?
        @Option(help: "Virtual CPUs (default: 1).") var vcpus: Int?
        @Option(help: ArgumentHelp("A NIC as key=value pairs: mac=…,ip=…,mode=…,link=…,vlan=…,network=…,name=… (repeat).", valueName: "SPEC"))
        var nic: [String] = []
        @Option(help: "OS definition (default: none, raw disk copy).") var os: String?
        @Option(name: .customLong("disk-template"), help: "Ganeti disk template recorded for the instance.") var diskTemplate = "file"
        @Option(help: "Hypervisor (default: the agent's).") var hypervisor: String?
        @Option(help: "An instance tag (repeat for more).") var tag: [String] = []
        @Flag(help: "Record the instance as running and start it (default: stopped).") var running = false

        func validate() throws {
            if domain != nil {
                if !disk.isEmpty || !nic.isEmpty || running || hypervisor != nil || memory != nil || vcpus != nil {
                    throw ValidationError("--domain reads disks, NICs, memory, vCPUs and the state from libvirt: --disk, --nic, --memory, --vcpus, --hypervisor and --running do not apply")
                }
            } else {
                if name == nil { throw ValidationError("Missing expected argument '<name>' (or --domain)") }
                if disk.isEmpty { throw ValidationError("Missing expected argument '--disk <path>' (or --domain)") }
            }
        }

        func execute() async throws {
            let service = try ClusterAgentService(paths: AgentPaths(root: dir))
            if let domain {
                let record = try await service.adoptDomain(domain, name: name, os: os, diskTemplate: diskTemplate, tags: tag)
                print("domain \(domain) adopted as instance \(record.name) with \(record.diskPaths.count) disk(s) (UUID \(record.uuid))")
                return
            }
            guard let name else { throw CLIError("an instance name is needed") }
            var disks: [InstanceSpec.Disk] = []
            for path in disk {
                let source = try BlockSource(path: path)
                guard let bytes = source.size else { throw CLIError("\(path): not a file or block device") }
                disks.append(InstanceSpec.Disk(size: (bytes + (1 << 20) - 1) >> 20))
            }
            let nics = try nic.map(Self.parseNIC)
            let spec = InstanceSpec(name: name, diskTemplate: diskTemplate, disks: disks, nics: nics, os: os, hypervisor: hypervisor ?? service.config.hypervisor.rawValue,
                                    beparams: ["maxmem": .int(memory ?? 512), "minmem": .int(memory ?? 512), "vcpus": .int(vcpus ?? 1)], tags: tag)
            try await service.adopt(spec: spec, diskPaths: disk.map { URL(fileURLWithPath: $0).standardizedFileURL.path }, running: running)
            print("instance \(name) adopted with \(disks.count) disk(s)")
        }

        static func parseNIC(_ text: String) throws -> InstanceSpec.NIC {
            var nic = InstanceSpec.NIC()
            for pair in text.split(separator: ",") {
                let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
                guard parts.count == 2 else { throw CLIError("--nic '\(text)': expected key=value pairs") }
                switch parts[0] {
                case "mac": nic.mac = parts[1]
                case "ip": nic.ip = parts[1]
                case "mode": nic.mode = parts[1]
                case "link": nic.link = parts[1]
                case "vlan": nic.vlan = parts[1]
                case "network": nic.network = parts[1]
                case "name": nic.name = parts[1]
                default: throw CLIError("--nic '\(text)': unknown key '\(parts[0])'")
                }
            }
            return nic
        }
    }
}
