import BlockStream
import Foundation
import MoveTrust
import Synchronization

/// One cluster's agent: configuration, state, jobs, keys and drivers. The HTTPS API
/// (``RAPIRouter``) is a thin layer over it.
public final class ClusterAgentService: Sendable {
    public let paths: AgentPaths
    public let config: AgentConfig
    public let database: AgentDatabase
    public let jobs: JobRunner
    public let secret: ClusterDomainSecret
    /// Source keys, made by prepare-export; they live until the export ends or they expire.
    public let keyStore: X509KeyStore
    /// Destination keys, made by and for one import job; none survives a restart.
    public let importKeyStore: X509KeyStore
    let hypervisor: any HypervisorDriver
    let storage: any StorageBackend
    /// This agent's metrics (`GET /metrics`), in a registry of its own.
    public let metrics = AgentMetrics()
    /// Instances whose import job runs in this process; the sweep leaves them alone.
    let activeImports = Mutex<Set<String>>([])

    /// The extensions this agent speaks, advertised in `/2/features` next to Ganeti's.
    public static let features = ["instance-create-reqv1", "instance-reinstall-reqv1", "node-migrate-reqv1", "node-evac-res1",
                                  "gnt-move-stream-v1", "gnt-move-continue-v1", "gnt-move-import-continue-v1", "gnt-move-warm-v1",
                                  SignedInstanceSpec.feature]

    public init(paths: AgentPaths) throws {
        self.paths = paths
        config = try paths.loadConfig()
        secret = try ClusterDomainSecret.load(path: paths.secret)
        database = try AgentDatabase(path: paths.database)
        jobs = JobRunner(database: database, metrics: metrics)
        keyStore = X509KeyStore(directory: paths.crypto)
        importKeyStore = X509KeyStore(directory: paths.crypto + "/import")
        switch config.hypervisorDriver {
        case .command:
            guard let start = config.startCommand, let stop = config.stopCommand else {
                throw AgentError.configuration("the command hypervisor driver needs startCommand and stopCommand in \(paths.config)")
            }
            let status = config.statusCommand.map { [config] in HostCommand($0, timeout: config.effectiveStatusCommandTimeout) }
            hypervisor = CommandHypervisor(start: HostCommand(start, timeout: config.effectiveStartCommandTimeout),
                                           stop: HostCommand(stop, timeout: config.effectiveStopCommandTimeout), status: status)
        case .fake:
            hypervisor = FakeHypervisor()
        case .libvirt:
            hypervisor = LibvirtHypervisor(config: config, scratchFolder: paths.crypto + "/libvirt")
        }
        if config.storageBackend == .block, let group = config.volumeGroup {
            storage = LVMStorage(volumeGroup: group, lvcreate: config.lvcreateCommand, lvremove: config.lvremoveCommand, vgFree: config.vgFreeCommand,
                                 timeout: config.effectiveStorageCommandTimeout)
        } else {
            storage = FileStorage(folder: paths.disks)
        }
        _ = try database.failInterruptedJobs()
    }

    public func instance(_ name: String) throws -> InstanceRecord {
        guard let record = try database.instance(name) else { throw AgentError.unknown("Instance '\(name)' not known") }
        return record
    }

    func isRunning(_ record: InstanceRecord) async throws -> Bool {
        try await hypervisor.isRunning(record)
    }

    /// ``isRunning(_:)`` of each record, in order, at most `width` status commands at a time.
    func runningStates(_ records: [InstanceRecord], width: Int = 8) async throws -> [Bool] {
        try await withThrowingTaskGroup(of: (Int, Bool).self) { group in
            var states = [Bool](repeating: false, count: records.count)
            for (index, record) in records.enumerated() {
                if index >= width, let (done, state) = try await group.next() { states[done] = state }
                group.addTask { (index, try await self.isRunning(record)) }
            }
            for try await (done, state) in group { states[done] = state }
            return states
        }
    }

    /// `GET /2/info`.
    public var clusterInfo: JSONValue {
        .object([
            "name": .string(config.clusterName),
            "master": .string(config.nodeName),
            "default_iallocator": .string("gnt-move-most-free"),
            "enabled_hypervisors": .array([.string(config.hypervisor.rawValue)]),
            "default_hypervisor": .string(config.hypervisor.rawValue),
            "enabled_disk_templates": .array(config.enabledDiskTemplates.map(JSONValue.string)),
            // As Ganeti lists the tools its import/export accepts ("none" is always accepted).
            "compression_tools": .array(CompressionMethod.allCases.filter { $0 != CompressionMethod.none }.map { .string($0.rawValue) }),
            "software_version": .string("gnt-move \(GntMoveVersion.current) (Ganeti RAPI 2 compatible)"),
            "gnt_move_hypervisor_driver": .string(config.hypervisorDriver == .fake
                ? "fake: demos and tests only, instances are records and no VM runs" : config.hypervisorDriver.rawValue),
            // Where remote sources send disks (a gnt-move extension: preflight warns about a
            // loopback address published to a source on another host).
            "gnt_move_data_address": .string(config.dataAddress),
            "protocol_version": .int(3_000_000),
            "os_api_version": .int(20),
            "export_version": .int(0),
            "architecture": .array([.string("64bit"), .string("x86_64")]),
            "tags": .array([]),
            "ctime": .double(0), "mtime": .double(0),
            "uuid": .string(config.clusterName),
        ])
    }

    // MARK: Operations run as jobs

    /// `OpInstanceQueryData` with `static`.
    public func submitQueryData(_ name: String) throws -> Int64 {
        try jobs.submit(op: .object(["OP_ID": .string("OP_INSTANCE_QUERY_DATA"), "instances": .array([.string(name)]), "static": .bool(true)]),
                        summary: "INSTANCE_QUERY_DATA") { [self] _ in
            let record = try instance(name)
            let volumeGroup = config.storageBackend == .block ? config.volumeGroup : nil
            return .object([name: InstanceViews.queryData(record, node: config.nodeName, volumeGroup: volumeGroup)])
        }
    }

    /// `OpBackupPrepare` (remote): a fresh key and certificate for this move, and the signed
    /// handshake, key name and certificate. gnt-move adds the signed instance spec when the
    /// third party names the destination cluster (`gnt_move_destination_cluster`), bound to it,
    /// to this move's key and certificate, and to the certificate's expiry.
    public func submitPrepareExport(_ name: String, mode: String, destinationCluster: String? = nil) throws -> Int64 {
        if let destinationCluster { try SpecValidation.name(destinationCluster, .hostname, "gnt_move_destination_cluster") }
        return try jobs.submit(op: .object(["OP_ID": .string("OP_BACKUP_PREPARE"), "instance_name": .string(name), "mode": .string(mode)]),
                               summary: "BACKUP_PREPARE(\(name))") { [self] context in
            let record = try instance(name)
            guard mode == "remote" else { return .null }
            context.log("Generating X509 certificate on \(config.nodeName)")
            let key = try keyStore.create(secret: secret)
            var result: [String: JSONValue] = [
                "handshake": ExportHandshake.make(secret: secret),
                "x509_key_name": key.signedName,
                "x509_ca": .string(key.signedCertificate),
            ]
            if let destinationCluster {
                let binding = SignedInstanceSpec.Binding(sourceCluster: config.clusterName, destinationCluster: destinationCluster, keyName: key.name,
                                                         certificateSHA256: key.certificate.sha256Fingerprint, expires: key.certificate.notAfter)
                result["gnt_move_signed_spec"] = SignedInstanceSpec.sign(record.spec, binding: binding, secret: secret)
            }
            return .object(result)
        }
    }

    public func submitStartup(_ name: String) throws -> Int64 {
        _ = try instance(name)
        return try jobs.submit(op: .object(["OP_ID": .string("OP_INSTANCE_STARTUP"), "instance_name": .string(name)]),
                               summary: "INSTANCE_STARTUP(\(name))") { [self] _ in
            try await start(name)
            return .null
        }
    }

    public func submitShutdown(_ name: String) throws -> Int64 {
        _ = try instance(name)
        return try jobs.submit(op: .object(["OP_ID": .string("OP_INSTANCE_SHUTDOWN"), "instance_name": .string(name)]),
                               summary: "INSTANCE_SHUTDOWN(\(name))") { [self] _ in
            try await stop(name)
            return .null
        }
    }

    public func submitRemove(_ name: String) throws -> Int64 {
        _ = try instance(name)
        return try jobs.submit(op: .object(["OP_ID": .string("OP_INSTANCE_REMOVE"), "instance_name": .string(name)]),
                               summary: "INSTANCE_REMOVE(\(name))") { [self] context in
            try await remove(name, context: context)
            return .null
        }
    }

    func start(_ name: String) async throws {
        let record = try instance(name)
        guard record.lifecycle == "ready" else { throw AgentError.wrongState("Instance '\(name)' is being imported") }
        try await hypervisor.start(record)
        try database.update(name) { $0.adminState = "up" }
    }

    func stop(_ name: String) async throws {
        try await hypervisor.stop(try instance(name))
        try database.update(name) { $0.adminState = "down" }
    }

    /// Waits until the driver confirms the instance is off (a disk is read only then), polling
    /// its status up to the configured stop timeout.
    func confirmOff(_ name: String, timeout: Double, context: JobContext?) async throws {
        let deadline = Date().addingTimeInterval(timeout)
        var delay: UInt64 = 50_000_000
        while try await isRunning(try instance(name)) {
            guard Date() < deadline else {
                throw AgentError.wrongState("Instance '\(name)' is still running \(Int(timeout)) s after it was asked to stop; its disks were not read (stopTimeout in agent.json)")
            }
            try await Task.sleep(nanoseconds: delay)
            delay = min(delay * 2, 1_000_000_000)
        }
        context?.log("Instance \(name) is confirmed off")
    }

    /// Stops the instance, removes what the hypervisor holds of it (its libvirt domain: the one
    /// of its UUID), deletes its disks (files the agent holds; adopted block devices are only
    /// forgotten) and its record. An instance the driver still reports running keeps everything:
    /// its disks are never deleted under a running guest.
    func remove(_ name: String, context: JobContext?) async throws {
        try? await stop(name)
        let record = try instance(name)
        if try await isRunning(record) {
            throw AgentError.wrongState("Instance '\(name)' is still running; nothing of it was removed")
        }
        try await hypervisor.undefine(record)
        for path in record.diskPaths {
            var info = stat()
            let isBlock = stat(path, &info) == 0 && (info.st_mode & S_IFMT) == S_IFBLK
            if isBlock && !(storage is LVMStorage) { continue }
            if isBlock { try await storage.remove(path: path) } else if FileManager.default.fileExists(atPath: path) {
                try FileManager.default.removeItem(atPath: path)
            }
            context?.log("Removed disk \(path)")
        }
        try database.deleteInstance(name)
    }

    /// `gnt-move agent add-instance`: adopts existing images or devices as a new instance. A disk
    /// that another instance already holds (the same file or device, by any path) is refused:
    /// removing one instance would destroy the other's disk.
    public func adopt(spec: InstanceSpec, diskPaths: [String], running: Bool) async throws {
        guard config.hypervisorDriver != .libvirt else {
            throw AgentError.wrongInput("this agent's instances are libvirt domains: adopt one with --domain NAME (its disks and NICs are read from its definition)")
        }
        try await insertAdopted(spec: spec, diskPaths: diskPaths, running: running, uuid: nil)
        if running { try await start(spec.name) }
    }

    /// `gnt-move agent add-instance --domain`: adopts an existing libvirt domain, its memory,
    /// vCPUs, raw disks and NICs read from its definition, its state from libvirt. The record
    /// takes the domain's UUID, by which the driver finds it from then on.
    public func adoptDomain(_ domain: String, name: String?, os: String?, diskTemplate: String, tags: [String]) async throws -> InstanceRecord {
        guard let libvirt = hypervisor as? LibvirtHypervisor else {
            throw AgentError.wrongInput("--domain needs an agent whose hypervisor driver is libvirt (this one's is '\(config.hypervisorDriver)')")
        }
        let (description, running) = try await libvirt.describe(domain: domain)
        let name = name ?? domain
        if name != domain { try await libvirt.checkNameFree(name) }
        var disks: [InstanceSpec.Disk] = []
        for path in description.disks {
            guard let bytes = try BlockSource(path: path).size else { throw AgentError.wrongInput("\(path): not a file or block device") }
            disks.append(InstanceSpec.Disk(size: (bytes + (1 << 20) - 1) >> 20))
        }
        let spec = InstanceSpec(name: name, diskTemplate: diskTemplate, disks: disks, nics: description.nics, os: os, hypervisor: config.hypervisor.rawValue,
                                beparams: ["maxmem": .int(Int(description.memoryMiB)), "minmem": .int(Int(description.memoryMiB)), "vcpus": .int(Int(description.vcpus))], tags: tags)
        try await insertAdopted(spec: spec, diskPaths: description.disks, running: running, uuid: description.uuid)
        return try instance(name)
    }

    private func insertAdopted(spec: InstanceSpec, diskPaths: [String], running: Bool, uuid: String?) async throws {
        guard diskPaths.count == spec.disks.count else {
            throw AgentError.wrongInput("\(spec.disks.count) disk sizes for \(diskPaths.count) disk paths")
        }
        try SpecValidation.check(spec)
        guard try database.instance(spec.name) == nil else { throw AgentError.exists("Instance '\(spec.name)' is already in the cluster") }
        let instances = try database.instances()
        if let uuid, let holder = instances.first(where: { $0.uuid == uuid }) {
            throw AgentError.exists("the domain (UUID \(uuid)) is already the instance '\(holder.name)'")
        }
        try DiskOwnership.checkUnowned(diskPaths, instances: instances)
        let resolved = MACAddresses.resolving(spec, taken: instances)
        var record = InstanceRecord(spec: resolved, diskPaths: diskPaths, adminState: running ? "up" : "down")
        if let uuid { record.uuid = uuid }
        try database.insert(record)
    }
}
