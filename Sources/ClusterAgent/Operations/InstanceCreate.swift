import Foundation
import MoveTrust
import OpenSSLSupport

/// `POST /2/instances` (body version 1): `create` makes an instance with new blank disks;
/// `remote-import` makes one and fills its disks from another cluster (spec §0, §4).
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
                if mode == "remote-import" { try verifyRemoteImport(body: body) }
                _ = try validateCreation(body: body, name: name)
                context.log("dry run: every check passed; nothing was created")
                return .array([.string(config.nodeName)])
            }
            switch mode {
            case "create": return try await create(body: body, name: name, context: context)
            case "remote-import": return try await remoteImport(body: body, name: name, context: context)
            default: throw AgentError.wrongInput("Invalid instance creation mode '\(mode)'")
            }
        }
    }

    /// What every creation checks before anything is made: the name, the template, the
    /// hypervisor, the node and the space (Ganeti's error codes).
    func validateCreation(body: JSONValue, name: String) throws -> InstanceSpec {
        guard !name.isEmpty else { throw AgentError.wrongInput("Missing instance name") }
        guard try database.instance(name) == nil else { throw AgentError.exists("Instance '\(name)' is already in the cluster") }
        let template = body["disk_template"]?.stringValue ?? ""
        guard config.enabledDiskTemplates.contains(template) else {
            throw AgentError.wrongInput("Disk template '\(template)' is not enabled in cluster (enabled: \(config.enabledDiskTemplates.joined(separator: ", ")))")
        }
        let hypervisor = body["hypervisor"]?.stringValue ?? config.hypervisor
        guard hypervisor == config.hypervisor else {
            throw AgentError.wrongInput("Selected hypervisor (\(hypervisor)) not enabled in the cluster (\(config.hypervisor))")
        }
        if let pnode = body["pnode"]?.stringValue, pnode != config.nodeName {
            throw AgentError.unknown("Node '\(pnode)' not known (this cluster's node is '\(config.nodeName)')")
        }
        guard let diskList = body["disks"]?.arrayValue, !diskList.isEmpty else { throw AgentError.wrongInput("No disks given") }
        var disks: [InstanceSpec.Disk] = []
        for (index, disk) in diskList.enumerated() {
            guard let size = disk["size"]?.integerValue, size > 0 else { throw AgentError.wrongInput("Disk \(index): missing or invalid size") }
            let diskName = disk["name"]?.stringValue.flatMap { $0 == "None" ? nil : $0 }
            disks.append(InstanceSpec.Disk(size: size, mode: disk["mode"]?.stringValue ?? "rw", name: diskName))
        }
        let needed = disks.reduce(Int64(0)) { $0 + $1.size } << 20
        let free = storage.freeBytes()
        guard needed <= free else {
            throw AgentError.noSpace("Not enough disk space on node \(config.nodeName): \(needed >> 20) MiB needed, \(free >> 20) MiB free")
        }
        let nics: [InstanceSpec.NIC] = (body["nics"]?.arrayValue ?? []).map { nic in
            func value(_ key: String) -> String? { nic[key]?.stringValue }
            return InstanceSpec.NIC(name: value("name"), mac: value("mac"), ip: value("ip"), mode: value("mode"),
                                    link: value("link"), vlan: value("vlan"), network: value("network"))
        }
        return InstanceSpec(name: name, diskTemplate: template, disks: disks, nics: nics, os: body["os"]?.stringValue ?? body["os_type"]?.stringValue,
                            hypervisor: hypervisor, beparams: body["beparams"]?.objectValue ?? [:], hvparams: body["hvparams"]?.objectValue ?? [:],
                            osparams: body["osparams"]?.objectValue ?? [:], tags: (body["tags"]?.arrayValue ?? []).compactMap(\.stringValue))
    }

    /// Creates the disks and the record; on failure removes what it made.
    func materialize(_ spec: InstanceSpec, lifecycle: String, context: JobContext) throws -> InstanceRecord {
        context.log("* creating instance disks...")
        var paths: [String] = []
        do {
            for (index, disk) in spec.disks.enumerated() {
                paths.append(try storage.create(instance: spec.name, index: index, sizeMiB: disk.size))
            }
            context.log("adding instance \(spec.name) to cluster config")
            let record = InstanceRecord(spec: spec, diskPaths: paths, adminState: "down", lifecycle: lifecycle)
            try database.insert(record)
            return record
        } catch {
            for path in paths { try? storage.remove(path: path) }
            throw error
        }
    }

    func create(body: JSONValue, name: String, context: JobContext) async throws -> JSONValue {
        let spec = try validateCreation(body: body, name: name)
        _ = try materialize(spec, lifecycle: "ready", context: context)
        if body["start"]?.boolValue ?? true {
            context.log("* starting instance...")
            try start(name)
        }
        return .array([.string(config.nodeName)])
    }

    /// Checks everything the third party relayed for a remote import; returns the source's
    /// certificate and instance name.
    @discardableResult
    func verifyRemoteImport(body: JSONValue) throws -> (certificate: X509Certificate, sourceName: String) {
        try ExportHandshake.check(body["source_handshake"] ?? .null, secret: secret)
        guard let signedCertificate = body["source_x509_ca"]?.stringValue else { throw AgentError.wrongInput("Missing source_x509_ca") }
        let sourceCertificate = try SignedCertificate.verify(signedCertificate, secret: secret).certificate
        guard let sourceName = body["source_instance_name"]?.stringValue, !sourceName.isEmpty else {
            throw AgentError.wrongInput("Missing source instance name")
        }
        return (sourceCertificate, sourceName)
    }

    func remoteImport(body: JSONValue, name: String, context: JobContext) async throws -> JSONValue {
        // Everything relayed by the third party is checked before anything is created.
        let (sourceCertificate, sourceName) = try verifyRemoteImport(body: body)
        let spec = try validateCreation(body: body, name: name)
        if let signedSpec = body["gnt_move_signed_spec"], signedSpec != .null {
            let verified = try SignedInstanceSpec.verify(signedSpec, secret: secret).spec
            guard verified.name == sourceName else {
                throw AgentError.wrongInput("The signed spec describes instance '\(verified.name)', not '\(sourceName)'")
            }
            guard verified.disks.map(\.size) == spec.disks.map(\.size) else {
                throw AgentError.wrongInput("The requested disks (\(spec.disks.map(\.size)) MiB) differ from the signed spec's (\(verified.disks.map(\.size)) MiB)")
            }
        }
        let compress = body["compress"]?.stringValue ?? "none"
        let osScripts = OSScripts(searchPath: config.osSearchPath)
        let osFolder = try spec.os.map { try osScripts.require($0, script: "import") }
        activeImports.withLock { _ = $0.insert(name) }
        defer { activeImports.withLock { _ = $0.remove(name) } }
        context.log("* preparing remote import...")
        let record = try materialize(spec, lifecycle: "importing", context: context)
        var daemons: [DiskTransferProcess] = []
        var keyName: String?
        func discard() {
            daemons.forEach { $0.kill() }
            if let keyName { try? importKeyStore.remove(name: keyName) }
            try? remove(name, context: nil)
        }
        do {
            let key = try importKeyStore.create(secret: secret)
            keyName = key.name
            let magicBase = ImportExportMagic.generateBase()
            for (index, disk) in spec.disks.enumerated() {
                let magic = ImportExportMagic.compute(base: magicBase, instanceName: name, index: index)
                let access = osScripts.diskAccess(mode: "import", folder: osFolder, spec: spec, diskPaths: record.diskPaths, index: index)
                let arguments = ["--key", key.keyPath, "--cert", key.certificatePath, "--magic", magic, "--compress", compress,
                                 "--connect-timeout", String(config.importConnectTimeout), "--expected-size", String(disk.size),
                                 "--bind", config.bindAddress == "0.0.0.0" ? config.dataAddress : config.bindAddress] + access.arguments
                daemons.append(try DiskTransferProcess(
                    executable: importExportExecutable, mode: "import", index: index, baseFolder: paths.importExport,
                    peerCertificate: sourceCertificate, arguments: arguments, osScript: access.script))
            }
            let ports = try await TransferMonitor(context: context, daemons: daemons, direction: "receiving").waitListening(timeout: 10)
            for daemon in daemons { context.log("Disk \(daemon.index) is now listening") }
            let salt = Salt.generate()
            let disks = ports.enumerated().map { index, port in
                RemoteImportDiskInfo.sign(index: index, host: config.dataAddress, port: port,
                                          magic: ImportExportMagic.compute(base: magicBase, instanceName: name, index: index),
                                          secret: secret, salt: salt)
            }
            try context.log(type: "remote-import", .object(["disks": .array(disks), "x509_ca": .string(key.signedCertificate)]))
            let results = await TransferMonitor(context: context, daemons: daemons, direction: "receiving").follow()
            try context.checkCanceled()
            guard results.allSatisfy({ $0 }) else {
                let failed = results.enumerated().filter { !$0.element }.map { String($0.offset) }
                throw AgentError.execution("Disk(s) \(failed.joined(separator: ", ")) failed to import; the half-created instance was removed")
            }
        } catch {
            discard()
            throw error
        }
        if let keyName { try? importKeyStore.remove(name: keyName) }
        daemons.forEach { $0.removeFolder() }
        try await osScripts.renameIfNeeded(spec: spec, oldName: sourceName, diskPaths: record.diskPaths, context: context)
        try database.update(name) { $0.lifecycle = "ready" }
        if body["start"]?.boolValue ?? false {
            context.log("* starting instance...")
            try start(name)
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
