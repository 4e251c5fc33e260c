import BlockStream
import Foundation
import MoveTrust
import OpenSSLSupport

/// `POST /2/instances` (body version 1): `create` makes an instance with new blank disks;
/// `remote-import` makes one and fills its disks from another cluster (docs/protocol.md §0, §4).
extension ClusterAgentService {
    /// With `dryRun`, every check runs (handshake, certificate, signed spec, name, template,
    /// hypervisor, node, space) and nothing is created, as Ganeti's `dry_run`.
    public func submitCreate(body: JSONValue, dryRun: Bool = false) throws -> Int64 {
        guard body["__version__"]?.integerValue == 1 else {
            throw AgentError.wrongInput("Only request version 1 is supported ('__version__': 1)")
        }
        let name = body["instance_name"]?.stringValue ?? body["name"]?.stringValue ?? ""
        let mode = body["mode"]?.stringValue ?? ""
        var op = body.objectValue ?? [:]
        op["OP_ID"] = .string("OP_INSTANCE_CREATE")
        op["instance_name"] = .string(name)
        op.removeValue(forKey: "name")
        op["dry_run"] = .bool(dryRun)
        return try jobs.submit(op: .object(op), summary: "INSTANCE_CREATE(\(name))") { [self] context in
            if dryRun {
                if mode == "remote-import" { _ = try await verifyRemoteImport(body: body, name: name) } else { _ = try await validateCreation(body: body, name: name) }
                context.log("dry run: every check passed; nothing was created")
                return .array([.string(config.nodeName)])
            }
            switch mode {
            case "create": return try await create(body: body, name: name, context: context)
            case "remote-import":
                if body["gnt_move_continue"]?.boolValue == true { return try await continueImport(body: body, name: name, context: context) }
                return try await remoteImport(body: body, name: name, context: context)
            default: throw AgentError.wrongInput("Invalid instance creation mode '\(mode)'")
            }
        }
    }

    /// What every creation checks before anything is made: the names, the numbers, the
    /// template, the hypervisor, the node and the space (Ganeti's error codes). Nothing from the
    /// body reaches a path, a command or a script before this passed.
    func validateCreation(body: JSONValue, name: String) async throws -> InstanceSpec {
        guard !name.isEmpty else { throw AgentError.wrongInput("Missing instance name") }
        try SpecValidation.name(name, .hostname, "instance name")
        let spec = try parseSpec(body: body, name: name)
        try await checkPlacement(spec, body: body)
        return spec
    }

    /// The instance a create body describes, every field checked.
    func parseSpec(body: JSONValue, name: String) throws -> InstanceSpec {
        let template = body["disk_template"]?.stringValue ?? ""
        let hypervisor = body["hypervisor"]?.stringValue ?? config.hypervisor.rawValue
        guard let diskList = body["disks"]?.arrayValue, !diskList.isEmpty else { throw AgentError.wrongInput("No disks given") }
        guard diskList.count <= SpecValidation.maxDisks else { throw AgentError.wrongInput("disks: at most \(SpecValidation.maxDisks) disks, not \(diskList.count)") }
        var disks: [InstanceSpec.Disk] = []
        for (index, disk) in diskList.enumerated() {
            guard let size = disk["size"]?.integerValue, size > 0 else { throw AgentError.wrongInput("Disk \(index): missing or invalid size") }
            let diskName = disk["name"]?.stringValue.flatMap { $0 == "None" ? nil : $0 }
            disks.append(InstanceSpec.Disk(size: size, mode: disk["mode"]?.stringValue ?? "rw", name: diskName))
        }
        guard let nicList = (body["nics"] ?? .array([])).arrayValue else { throw AgentError.wrongInput("nics: must be a list") }
        guard nicList.count <= SpecValidation.maxNICs else { throw AgentError.wrongInput("nics: at most \(SpecValidation.maxNICs) NICs, not \(nicList.count)") }
        let nics: [InstanceSpec.NIC] = nicList.map { nic in
            func value(_ key: String) -> String? { nic[key]?.stringValue }
            return InstanceSpec.NIC(name: value("name"), mac: value("mac"), ip: value("ip"), mode: value("mode"),
                                    link: value("link"), vlan: value("vlan"), network: value("network"))
        }
        func params(_ key: String) throws -> [String: JSONValue] {
            guard let value = body[key], value != .null else { return [:] }
            guard let object = value.objectValue else { throw AgentError.wrongInput("\(key): must be an object") }
            return object
        }
        guard let tagList = (body["tags"] ?? .array([])).arrayValue, tagList.allSatisfy({ $0.stringValue != nil }) else {
            throw AgentError.wrongInput("tags: must be a list of strings")
        }
        let spec = InstanceSpec(name: name, diskTemplate: template, disks: disks, nics: nics, os: body["os"]?.stringValue ?? body["os_type"]?.stringValue,
                                hypervisor: hypervisor, beparams: try params("beparams"), hvparams: try params("hvparams"),
                                osparams: try params("osparams"), tags: tagList.compactMap(\.stringValue))
        try SpecValidation.check(spec)
        return spec
    }

    /// Whether this cluster can hold the instance: name free, template and hypervisor enabled,
    /// node known, space free.
    func checkPlacement(_ spec: InstanceSpec, body: JSONValue) async throws {
        guard try database.instance(spec.name) == nil else { throw AgentError.exists("Instance '\(spec.name)' is already in the cluster") }
        try await hypervisor.checkPlacement(spec)
        guard config.enabledDiskTemplates.contains(spec.diskTemplate) else {
            throw AgentError.wrongInput("Disk template '\(spec.diskTemplate)' is not enabled in cluster (enabled: \(config.enabledDiskTemplates.joined(separator: ", ")))")
        }
        guard spec.hypervisor == config.hypervisor.rawValue else {
            throw AgentError.wrongInput("Selected hypervisor (\(spec.hypervisor)) not enabled in the cluster (\(config.hypervisor))")
        }
        try checkVolumeGroups(body)
        if let pnode = body["pnode"]?.stringValue, pnode != config.nodeName {
            try SpecValidation.name(pnode, .hostname, "pnode")
            throw AgentError.unknown("Node '\(pnode)' not known (this cluster's node is '\(config.nodeName)')")
        }
        let needed = try SpecValidation.totalBytes(spec.disks.map(\.size))
        let free = try await storage.freeBytes()
        guard needed <= free else {
            throw AgentError.noSpace("Not enough disk space on node \(config.nodeName): \(needed >> 20) MiB needed, \(free >> 20) MiB free")
        }
    }

    /// A disk that names a volume group (Ganeti's `vg`, sent by `--storage-map`) must name the
    /// one this agent's LVM storage uses: the agent has one, and a file-backed agent none.
    func checkVolumeGroups(_ body: JSONValue) throws {
        for (index, disk) in (body["disks"]?.arrayValue ?? []).enumerated() {
            guard let value = disk["vg"], value != .null else { continue }
            guard let vg = value.stringValue else { throw AgentError.wrongInput("disks[\(index)].vg: must be a string") }
            try SpecValidation.name(vg, .volumeGroup, "disks[\(index)].vg")
            guard let own = config.storageBackend == .block ? config.volumeGroup : nil else {
                let disks = config.storageBackend == .block ? "adopted block devices" : "files in \(paths.disks)"
                throw AgentError.wrongInput("disks[\(index)].vg: this cluster has no volume group (its disks are \(disks)); it cannot place a disk in '\(vg)'")
            }
            guard vg == own else {
                throw AgentError.wrongInput("disks[\(index)].vg: this cluster's volume group is '\(own)', not '\(vg)'")
            }
        }
    }

    /// Records the instance, then creates its disks, so that a crash at any point leaves a
    /// record naming every disk the agent may have made: the restart removes `creating` and
    /// `importing` instances with their disks. A planned disk path that already exists is
    /// refused before anything is recorded; one that appears meanwhile is dropped from the record
    /// before the failure is handled, so no cleanup ever deletes a file the agent did not create.
    func materialize(_ requested: InstanceSpec, lifecycle: String, context: JobContext) async throws -> InstanceRecord {
        // `generate`/`auto` MACs get an address of their own, as Ganeti gives them.
        let spec = MACAddresses.resolving(requested, taken: try database.instances())
        let planned = spec.disks.indices.map { storage.plannedPath(instance: spec.name, index: $0) }
        for path in planned {
            var info = stat()
            if lstat(path, &info) == 0 { throw AgentError.exists("disk \(path) already exists; it is not this agent's to reuse") }
        }
        context.log("adding instance \(spec.name) to cluster config")
        try database.insert(InstanceRecord(spec: spec, diskPaths: planned, adminState: "down", lifecycle: "creating"))
        context.log("* creating instance disks...")
        var created = 0
        do {
            for (index, disk) in spec.disks.enumerated() {
                _ = try await storage.create(instance: spec.name, index: index, sizeMiB: disk.size)
                created += 1
            }
        } catch {
            try? database.update(spec.name) { $0.diskPaths = Array(planned.prefix(created)) }
            try? await remove(spec.name, context: nil)
            throw error
        }
        try database.update(spec.name) { $0.lifecycle = lifecycle }
        return try instance(spec.name)
    }

    /// Defines the complete instance with the hypervisor, then marks it ready; a failure removes
    /// the instance and what the hypervisor holds of it (a domain of its UUID: only the agent's).
    func register(_ record: InstanceRecord, context: JobContext) async throws {
        do {
            if let defined = try await hypervisor.define(record) { context.log(defined) }
        } catch {
            try? await remove(record.name, context: nil)
            throw error
        }
        try database.update(record.name) { $0.lifecycle = "ready" }
    }

    func create(body: JSONValue, name: String, context: JobContext) async throws -> JSONValue {
        let spec = try await validateCreation(body: body, name: name)
        let record = try await materialize(spec, lifecycle: InstanceLifecycle.creating.rawValue, context: context)
        try await register(record, context: context)
        if body["start"]?.boolValue ?? true {
            context.log("* starting instance...")
            try await start(name)
        }
        return .array([.string(config.nodeName)])
    }

    func remoteImport(body: JSONValue, name: String, context: JobContext) async throws -> JSONValue {
        // Everything relayed by the third party is checked before anything is created.
        let plan = try await verifyRemoteImport(body: body, name: name)
        if !plan.signed { context.log("no signed instance spec: the instance is built from the request as relayed (a Ganeti source)") }
        for line in plan.overrides { context.log("override declared by the request and allowed by this cluster's policy: \(line)") }
        let osScripts = OSScripts(searchPath: config.osSearchPath)
        let osFolder = try plan.spec.os.map { try osScripts.require($0, script: "import") }
        activeImports.withLock { _ = $0.insert(name) }
        defer { activeImports.withLock { _ = $0.remove(name) } }
        context.log("* preparing remote import...")
        let continuable = body["gnt_move_continuable"]?.boolValue == true && osFolder == nil
        let record = try await materialize(plan.spec, lifecycle: InstanceLifecycle.importing.rawValue, context: context)
        return try await receiveDisks(plan: plan, record: record, body: body, osScripts: osScripts, osFolder: osFolder, continuable: continuable,
                                      compare: false, context: context)
    }

    /// `remote-import` with `gnt_move_continue`: the instance an interrupted continuable import
    /// kept (`import-interrupted`) receives its disks again, with fresh keys and addresses; its
    /// importers offer the digests of what the disks hold, so only what differs is sent.
    func continueImport(body: JSONValue, name: String, context: JobContext) async throws -> JSONValue {
        let plan = try await verifyRemoteImport(body: body, name: name, continuing: true)
        activeImports.withLock { _ = $0.insert(name) }
        defer { activeImports.withLock { _ = $0.remove(name) } }
        let record = try instance(name)
        context.log("* continuing the interrupted import of \(name): its disks keep what they received")
        try database.update(name) { $0.lifecycle = InstanceLifecycle.importingContinuable.rawValue }
        return try await receiveDisks(plan: plan, record: record, body: body, osScripts: OSScripts(searchPath: config.osSearchPath), osFolder: nil,
                                      continuable: true, compare: true, context: context)
    }

    /// Starts one import daemon per disk, publishes their signed addresses, and follows them. A
    /// failure after the addresses were published keeps a continuable import's instance and disks
    /// (`import-interrupted`) for the move to continue; anything else removes what was created.
    func receiveDisks(plan: RemoteImportPlan, record: InstanceRecord, body: JSONValue, osScripts: OSScripts, osFolder: String?,
                      continuable: Bool, compare: Bool, context: JobContext) async throws -> JSONValue {
        let (spec, sourceName, sourceCertificate, name) = (plan.spec, plan.sourceName, plan.sourceCertificate, record.name)
        var daemons: [DiskTransferProcess] = []
        var keyName: String?
        /// Whether a failed import keeps the instance for the move to continue: once the source
        /// may have sent data, unless the job was canceled or a daemon ended on a verdict (the
        /// same data would meet it again).
        var keep = false
        func keeping() -> Bool { keep && !context.isCanceled && !daemons.contains(where: { $0.status?.verdict == true }) }
        func discard() async {
            await DiskTransferProcess.stopAll(daemons)
            if let keyName { try? importKeyStore.remove(name: keyName) }
            if keeping() {
                daemons.forEach { $0.removeFolder() }
                try? database.update(name) { $0.lifecycle = InstanceLifecycle.importInterrupted.rawValue }
                context.log("the half-imported instance \(name) is kept (\(InstanceLifecycle.importInterrupted.rawValue)): the move may continue into its disks, or remove it")
            } else {
                try? await remove(name, context: nil)
            }
        }
        do {
            let dataPorts = try config.dataPorts
            let key = try importKeyStore.create(secret: secret)
            keyName = key.name
            let magicBase = ImportExportMagic.generateBase()
            for (index, disk) in spec.disks.enumerated() {
                let magic = ImportExportMagic.compute(base: magicBase, instanceName: name, index: index)
                let access = osScripts.diskAccess(mode: .import, folder: osFolder, spec: spec, diskPaths: record.diskPaths, index: index)
                daemons.append(try DiskTransferProcess(
                    executable: importExportExecutable, mode: .import, index: index, baseFolder: paths.importExport,
                    keyPath: key.keyPath, certificatePath: key.certificatePath, peerCertificate: sourceCertificate,
                    osScript: access.script) { options in
                    options.stream.magic = magic
                    options.stream.compression = plan.compression
                    options.connectTimeout = config.importConnectTimeout
                    options.reconnectWindow = config.effectiveTransferReconnectWindow
                    options.warm = plan.warm
                    options.compare = compare
                    options.expectedSize = disk.size << 20
                    // Listen where the signed disk info sends the source: the data address,
                    // which need not be the RAPI's (--bind), in its address family.
                    options.bind = config.dataAddress
                    options.family = AddressFamily(of: config.dataAddress)
                    // A firewall's range: the daemon takes its first free port, or fails naming it.
                    options.portRange = dataPorts
                    options.path = access.path
                })
            }
            let ports = try await TransferMonitor(context: context, daemons: daemons, direction: .import, metrics: metrics, instance: name).waitListening(timeout: 10)
            for daemon in daemons { context.log("Disk \(daemon.index) is now listening") }
            let salt = Salt.generate()
            let disks = ports.enumerated().map { index, port in
                RemoteImportDiskInfo.sign(index: index, host: config.dataAddress, port: port,
                                          magic: ImportExportMagic.compute(base: magicBase, instanceName: name, index: index),
                                          secret: secret, salt: salt)
            }
            if continuable {
                // From here on a restart keeps the instance (import-interrupted), too.
                try database.update(name) { $0.lifecycle = InstanceLifecycle.importingContinuable.rawValue }
                keep = true
            }
            try context.log(type: "remote-import", .object(["disks": .array(disks), "x509_ca": .string(key.signedCertificate)]))
            let results = await TransferMonitor(context: context, daemons: daemons, direction: .import, metrics: metrics, instance: name).follow()
            try context.checkCanceled()
            guard results.allSatisfy({ $0 }) else {
                let failed = results.enumerated().filter { !$0.element }.map { String($0.offset) }
                throw AgentError.execution("Disk(s) \(failed.joined(separator: ", ")) failed to import; "
                                           + (keeping() ? "the half-imported instance is kept for the move to continue" : "the half-created instance was removed"))
            }
        } catch {
            await discard()
            throw error
        }
        if let keyName { try? importKeyStore.remove(name: keyName) }
        daemons.forEach { $0.removeFolder() }
        try await osScripts.renameIfNeeded(spec: spec, oldName: sourceName, diskPaths: record.diskPaths, timeout: config.effectiveRenameScriptTimeout,
                                           context: context)
        try await register(record, context: context)
        if body["start"]?.boolValue ?? false {
            context.log("* starting instance...")
            try await start(name)
        }
        return .array([.string(config.nodeName)])
    }

    /// The `gnt-move` executable that runs the import/export daemons.
    var importExportExecutable: String {
        if let command = config.importExportCommand { return command }
        // The running executable, whatever path it was started by.
        if let path = try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe") { return path }
        return CommandLine.arguments[0]
    }
}
