import BlockStream
import Foundation
import MoveTrust

/// `PUT /2/instances/NAME/export` with mode `remote` (docs/protocol.md §4.4): stream every disk to the
/// destination the third party relayed, after checking that the destination really is a cluster
/// of this domain. The source's key is removed when the export ends, whatever the outcome, and the
/// instance is removed only when every disk was confirmed by the destination.
extension ClusterAgentService {
    public func submitExport(_ name: String, body: JSONValue) throws -> Int64 {
        _ = try instance(name)
        var op = body.objectValue ?? [:]
        op["OP_ID"] = .string("OP_BACKUP_EXPORT")
        op["instance_name"] = .string(name)
        if let destination = op.removeValue(forKey: "destination") { op["target_node"] = destination }
        return try jobs.submit(op: .object(op), summary: "BACKUP_EXPORT(\(name))") { [self] context in
            try await remoteExport(name, body: body, context: context)
        }
    }

    func remoteExport(_ name: String, body: JSONValue, context: JobContext) async throws -> JSONValue {
        guard body["mode"]?.stringValue == "remote" else { throw AgentError.wrongInput("Only remote exports are supported") }
        let record = try instance(name)
        let keyName = try X509KeyName.check(body["x509_key_name"] ?? .null, secret: secret)
        // A continuable export (gnt-move's coordinator, `gnt-move-continue-v1`) keeps its key
        // when it fails, so that a new export with the same certificate can continue the transfer
        // the importer still waits for; the coordinator removes it (discard-key) when it gives up.
        let continuable = body["gnt_move_continuable"]?.boolValue ?? false
        // A warm move's pre-copy pass (`gnt_move_pass: precopy`) reads the disks while the
        // instance runs and keeps the key for the passes after it.
        let precopy = try Self.isPrecopyPass(body)
        var succeeded = false
        defer {
            // Ganeti never removes the source's key (docs/protocol.md §9.9); gnt-move does.
            if !precopy && (succeeded || !continuable) { try? keyStore.remove(name: keyName) }
        }
        let compression = try SpecValidation.compression(body["compress"])
        guard keyStore.contains(name: keyName) else { throw AgentError.wrongInput("X509 key '\(keyName)' is not known on this cluster") }
        guard let signedCertificate = body["destination_x509_ca"]?.stringValue else { throw AgentError.wrongInput("Missing destination_x509_ca") }
        let destinationCertificate = try SignedCertificate.verify(signedCertificate, secret: secret).certificate
        guard let targets = body["destination"]?.arrayValue, targets.count == record.diskPaths.count else {
            throw AgentError.wrongInput("Wrong number of destinations: \(body["destination"]?.arrayValue?.count ?? 0) for \(record.diskPaths.count) disk(s)")
        }
        var destinations: [RemoteImportDiskInfo] = []
        for (index, target) in targets.enumerated() {
            destinations.append(try RemoteImportDiskInfo.check(target, index: index, secret: secret))
        }
        guard record.spec.disks.count == record.diskPaths.count else {
            throw AgentError.configuration("Instance \(name) has \(record.spec.disks.count) disk sizes for \(record.diskPaths.count) disk paths")
        }
        if precopy {
            if body["remove_instance"]?.boolValue == true { throw AgentError.wrongInput("remove_instance: a pre-copy pass never removes the instance") }
            if let os = record.spec.os {
                throw AgentError.wrongInput("gnt_move_pass: instance \(name) has OS '\(os)', whose export script carries its disks; a warm move needs direct disk access")
            }
        }
        let recordedUp = record.adminState == "up"
        let wasRunning = try await recordedUp ? true : isRunning(record)
        let shutdown = !precopy && (body["shutdown"]?.boolValue ?? true)
        let liveCopy = body["gnt_move_live_copy"]?.boolValue ?? false
        if precopy {
            context.log("Pre-copy pass of a warm move: reading the disks of \(name) while it \(wasRunning ? "runs" : "is stopped"); the final pass, after it stops, sends what changed since")
        } else if shutdown, wasRunning {
            context.log("Shutting down instance \(name)")
            try await stop(name)
        }
        // A disk copied while its VM runs is a corrupt copy: the driver must confirm the
        // instance is off, unless the operator asked for a live copy explicitly.
        if precopy {
            // Not a copy to keep: the final pass compares every chunk again.
        } else if liveCopy {
            context.log(" - WARNING: live copy requested (gnt_move_live_copy): the disks are read while \(name) may run; the copy is not consistent")
        } else if shutdown {
            do {
                try await confirmOff(name, timeout: config.effectiveStopTimeout, context: context)
            } catch {
                if wasRunning {
                    context.log("Starting instance \(name) again: it was not confirmed off, nothing was read")
                    try? await start(name)
                }
                throw error
            }
        } else if wasRunning {
            throw AgentError.wrongState("Instance \(name) is running and the export was asked not to shut it down; a remote export reads disks only from a stopped instance (gnt_move_live_copy asks for a live copy explicitly)")
        }
        let osScripts = OSScripts(searchPath: config.osSearchPath)
        let osFolder = try record.spec.os.map { try osScripts.require($0, script: "export") }
        let bandwidthLimit = body["gnt_move_bwlimit"]?.integerValue
        var daemons: [DiskTransferProcess] = []
        for (index, destination) in destinations.enumerated() {
            context.log("Sending disk \(index) to \(destination.host):\(destination.port)")
            let access = osScripts.diskAccess(mode: .export, folder: osFolder, spec: record.spec, diskPaths: record.diskPaths, index: index)
            daemons.append(try DiskTransferProcess(
                executable: importExportExecutable, mode: .export, index: index, baseFolder: paths.importExport,
                keyPath: keyStore.keyPath(keyName), certificatePath: keyStore.certificatePath(keyName),
                peerCertificate: destinationCertificate, osScript: access.script) { options in
                // Connect where the signed disk info says, in that address's family.
                options.host = destination.host
                options.port = destination.port
                options.family = AddressFamily(of: destination.host)
                options.stream.magic = destination.magic
                options.stream.compression = compression
                options.expectedSize = record.spec.disks[index].size << 20
                options.bandwidthLimit = bandwidthLimit
                options.reconnectWindow = config.effectiveTransferReconnectWindow
                options.resume = body["gnt_move_resume"]?.boolValue ?? false
                options.precopy = precopy
                options.path = access.path
            })
        }
        let results = await TransferMonitor(context: context, daemons: daemons, direction: .export, metrics: metrics, instance: name).follow()
        let allDone = results.allSatisfy { $0 }
        if allDone { daemons.forEach { $0.removeFolder() } }
        guard allDone else {
            // A continuable export leaves the instance stopped: the coordinator either exports
            // again or, giving up, starts it (it knows whether it ran before the move).
            if wasRunning, shutdown, !continuable, !precopy {
                context.log("Starting instance \(name) again after the failed export")
                try? await start(name)
            }
            let failed = results.enumerated().filter { !$0.element }.map { String($0.offset) }
            throw AgentError.execution("Export failed, errors in disk export: disk(s) \(failed.joined(separator: ", "))")
        }
        succeeded = true
        if !precopy, body["remove_instance"]?.boolValue ?? false {
            context.log("Removing instance \(name)")
            try await remove(name, context: context)
        }
        return .array([.bool(true), .array(results.map(JSONValue.bool))])
    }

    /// `gnt_move_pass`: absent (the one or final pass) or `precopy`.
    static func isPrecopyPass(_ body: JSONValue) throws -> Bool {
        guard let value = body["gnt_move_pass"], value != .null else { return false }
        guard value == .string("precopy") else { throw AgentError.wrongInput("gnt_move_pass: \(value.serialized) is not a pass this cluster knows (precopy)") }
        return true
    }
}
