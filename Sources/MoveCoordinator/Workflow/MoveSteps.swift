import Foundation
import MoveTrust

/// One step of the state machine per call: each step records what it learnt (and the job it
/// started) before the step that depends on it, so that `resume` repeats nothing destructive.
struct MoveSteps {
    let coordinator: Coordinator
    let request: MoveRequest
    let source: RAPIClient
    let destination: RAPIClient
    /// `--timeout`: when the move is given up.
    var deadline: Date? = nil
    var store: MoveStore { coordinator.store }

    func step(_ record: MoveRecord, _ name: String, _ fields: [String: JSONValue] = [:]) {
        var fields = fields
        fields["step"] = .string(name)
        coordinator.emit(MoveEvent(.step, move: record, fields))
    }

    func advance(_ record: MoveRecord) async throws -> MoveRecord {
        try checkDeadline()
        switch record.state {
        case .planned: return try await prepareSource(record)
        case .sourcePrepared: return try await createDestination(record)
        case .destinationCreated: return try await awaitListening(record)
        // A warm move copies while the source runs; once it is stopped (an import continued
        // after the stop), only the final pass is left.
        case .destinationListening:
            return request.warm && record.facts.sourceStopped == nil ? try await startPrecopy(record) : try await startExport(record)
        case .precopying: return try await awaitPrecopy(record)
        case .exporting: return try await awaitDisks(record)
        case .disksDone: return try await finalize(record)
        case .finalized: return try await removeSource(record)
        case .sourceRemoved: return try store.record(record.id, state: .done, detail: "move complete")
        case .done, .failed, .cleaned: return record
        }
    }

    func checkDeadline() throws {
        if let deadline, Date() > deadline {
            throw CoordinatorError(reason: .timeout, message: "the move did not finish within \(Int(request.timeout ?? 0)) s (--timeout)")
        }
    }

    /// Checks both clusters, reads the instance spec, and prepares the export (fresh keys on the
    /// source). A prepare-export repeated after a crash only makes another key, which the
    /// source's sweep removes.
    func prepareSource(_ record: MoveRecord) async throws -> MoveRecord {
        step(record, "check-clusters")
        do {
            _ = try await source.instance(request.instance)
        } catch let error as RAPIError where error.status == 404 {
            throw CoordinatorError(reason: .instanceNotFound, message: "instance \(request.instance) does not exist on the source cluster")
        }
        let features = try await destination.features()
        guard features.contains("instance-create-reqv1") else {
            throw CoordinatorError(reason: .incompatibleDestination, message: "the destination does not support instance creation requests version 1")
        }
        if request.warm { try Self.checkWarm(source: try await source.features(), destination: features) }
        let destinationInfo = try await destination.info()
        try Self.checkCompression(request.compress.rawValue, source: try await source.info(), destination: destinationInfo)
        step(record, "read-spec")
        let info = try await source.pollJob(try await source.instanceInfo(request.instance), deadline: deadline)
        guard let spec = info[request.instance] else { throw CoordinatorError(reason: .rapi, message: "the source returned no data for \(request.instance)") }
        let summary = try await source.instance(request.instance)
        // On a retry the source may already be down from the first attempt's export: what counts
        // is whether it ran before the move began.
        let wasRunning = record.facts.sourceWasRunning ?? (spec["config_state"]?.stringValue == "up")
        var defaultIallocator: JSONValue?
        if request.iallocator == nil && request.primaryNode == nil {
            defaultIallocator = destinationInfo["default_iallocator"]
        }
        // A gnt-move source signs the spec for exactly this destination cluster.
        let destinationCluster = try await source.features().contains(SignedInstanceSpec.feature) ? destinationInfo["name"]?.stringValue : nil
        // After a crash, the recorded prepare-export job is followed rather than repeated, so no
        // second key is made.
        let job: Int64
        if let recorded = record.facts.prepareJob {
            job = recorded
        } else {
            step(record, "prepare-export")
            job = try await source.prepareExport(request.instance, destinationCluster: destinationCluster)
            _ = try store.record(record.id, detail: "prepare-export job \(job)") { $0.prepareJob = job }
        }
        let prepared = try await source.pollJob(job, deadline: deadline)
        return try store.record(record.id, state: .sourcePrepared,
                                detail: "source prepared (key \(prepared["x509_key_name"]?.arrayValue?.first?.stringValue ?? "?"))") {
            $0.spec = spec
            $0.sourceWasRunning = wasRunning
            $0.tags = summary["tags"] ?? .array([])
            $0.iallocator = defaultIallocator
            $0.prepared = prepared
        }
    }

    /// Refuses a compression one of the clusters does not offer, before anything is prepared
    /// (Ganeti lists its `compression_tools` in `/2/info`; a cluster that lists none is not
    /// checked, and `none` is always accepted).
    static func checkCompression(_ compress: String, source: JSONValue, destination: JSONValue) throws {
        guard compress != "none" else { return }
        for (end, info) in [("source", source), ("destination", destination)] {
            guard let tools = info["compression_tools"]?.arrayValue?.compactMap(\.stringValue) else { continue }
            guard tools.contains(compress) else {
                throw CoordinatorError(reason: .refused, message: "the \(end) cluster does not offer --compress \(compress) (it offers \((["none"] + tools).joined(separator: ", ")))")
            }
        }
    }

    /// The remote-import request, as move-instance builds it (docs/protocol.md §6), with gnt-move's signed
    /// spec beside it when the destination understands it.
    func createBody(_ record: MoveRecord, features: [String]) -> JSONValue {
        let spec = record.facts.spec ?? .null
        let prepared = record.facts.prepared ?? .null
        // --storage-map: a disk whose volume group is mapped names the new one (Ganeti's `vg`).
        let volumeGroups = request.mappedVolumeGroups(spec: spec)
        let disks: [JSONValue] = (spec["disks"]?.arrayValue ?? []).enumerated().map { index, disk in
            var object: [String: JSONValue] = ["size": disk["size"] ?? .null, "mode": disk["mode"] ?? .string("rw"),
                                               "name": .string(disk["name"]?.stringValue ?? "None")]
            if let spindles = disk["spindles"], spindles != .null { object["spindles"] = spindles }
            if volumeGroups.indices.contains(index), let vg = volumeGroups[index] { object["vg"] = .string(vg) }
            return .object(object)
        }
        // --net and --bridge-map, declared as NIC overrides.
        let overrides = request.overrides(spec: spec)
        let nics: [JSONValue] = (spec["nics"]?.arrayValue ?? []).enumerated().map { index, nic in
            let parts = nic.arrayValue ?? []
            func part(_ i: Int) -> JSONValue { parts.indices.contains(i) ? parts[i] : .null }
            var object: [String: JSONValue] = ["name": part(0), "ip": part(2), "mac": part(3), "mode": part(4), "link": part(5),
                                               "vlan": part(6), "network": part(7)]
            for (key, value) in overrides.nics[index] ?? [:] { object[key] = value.map(JSONValue.string) ?? .null }
            return .object(object)
        }
        var beparams = spec["be_instance"]?.objectValue ?? [:]
        for (key, value) in request.beparams { beparams[key] = value }
        var hvparams = spec["hv_instance"]?.objectValue ?? [:]
        for (key, value) in request.hvparams { hvparams[key] = value }
        var osparams = spec["os_instance"]?.objectValue ?? [:]
        for (key, value) in request.osparams { osparams[key] = value }
        var body: [String: JSONValue] = [
            "__version__": .int(1), "mode": .string("remote-import"), "name": .string(request.targetName),
            "disk_template": request.destinationTemplate(spec: spec).map(JSONValue.string) ?? .null,
            "disks": .array(disks), "nics": .array(nics), "os": spec["os"] ?? .null,
            "pnode": request.primaryNode.map(JSONValue.string) ?? .null, "snode": request.secondaryNode.map(JSONValue.string) ?? .null,
            "iallocator": request.iallocator.map(JSONValue.string) ?? (record.facts.iallocator ?? .null),
            "start": .bool(request.start ?? (record.facts.sourceWasRunning ?? false)),
            "ip_check": .bool(false), "name_check": .bool(false), "hypervisor": spec["hypervisor"] ?? .null,
            "source_handshake": prepared["handshake"] ?? .null, "source_x509_ca": prepared["x509_ca"] ?? .null,
            "source_instance_name": .string(request.instance), "compress": .string(request.compress.rawValue),
            "beparams": .object(beparams), "hvparams": .object(hvparams), "osparams": .object(osparams),
            "opportunistic_locking": .bool((record.facts.opportunisticAttempt ?? 0) < request.opportunisticTries),
            "tags": .array(Self.tags(record.facts.tags, moveId: record.id)), "wait_for_sync": .bool(false),
        ]
        if request.warm { body["gnt_move_warm"] = .bool(true) }
        if features.contains(Self.importContinueFeature) {
            // The destination keeps a half-imported instance when its import fails, for the move
            // to continue into it; with `continue_import` this request is that continuation.
            body["gnt_move_continuable"] = .bool(true)
            if record.facts.continueImport == true { body["gnt_move_continue"] = .bool(true) }
        }
        if features.contains(SignedInstanceSpec.feature), let signed = prepared["gnt_move_signed_spec"], signed != .null {
            body["gnt_move_signed_spec"] = signed
            body["gnt_move_overrides"] = overrides.json
        }
        return .object(body)
    }

    /// The tag that marks the instances this move creates: cleanup removes a destination
    /// instance only when it carries it (Ganeti's tag syntax allows ':').
    static func moveTag(_ moveId: String) -> String { "gnt-move:move:" + moveId }

    /// The source's tags, without the marks of earlier moves, and this move's mark.
    static func tags(_ sourceTags: JSONValue?, moveId: String) -> [JSONValue] {
        let kept = (sourceTags?.arrayValue ?? []).filter { !($0.stringValue ?? "").hasPrefix("gnt-move:move:") }
        return kept + [.string(moveTag(moveId))]
    }

    func createDestination(_ record: MoveRecord) async throws -> MoveRecord {
        if record.facts.createSubmitted == true {
            // A crash after the request was sent but before its job id was recorded: find the job.
            if let job = try await findJob(destination, summary: "INSTANCE_CREATE(\(request.targetName))", after: record.facts.supersededCreateJob) {
                return try store.record(record.id, state: .destinationCreated, detail: "found create job \(job)") { $0.createJob = job }
            }
        }
        step(record, "create-destination", ["destination_instance": .string(request.targetName)])
        let overrides = request.overrides(spec: record.facts.spec)
        if !overrides.isEmpty {
            step(record, "overrides", ["overrides": .array(overrides.descriptions.map(JSONValue.string))])
        }
        let features = try await destination.features()
        _ = try store.record(record.id, detail: "submitting the remote-import request") { $0.createSubmitted = true }
        let job = try await destination.createInstance(createBody(record, features: features))
        return try store.record(record.id, state: .destinationCreated, detail: "remote-import job \(job)") { $0.createJob = job }
    }

    /// Waits for the destination's single `remote-import` log entry: the signed disk addresses
    /// and the destination's signed certificate.
    func awaitListening(_ record: MoveRecord) async throws -> MoveRecord {
        guard let job = record.facts.createJob else { throw CoordinatorError(reason: .state, message: "no create job recorded") }
        step(record, "await-destination")
        // Follows the job's log with `/2/jobs/ID/wait`: the destination answers when something
        // changes, not on a poll interval.
        var info: JSONValue?
        var serial: Int64?
        while true {
            let (previousInfo, previousSerial) = (info, serial)
            let change = try await destination.riding(until: deadline) { try await destination.waitForJobChange(job, previousInfo: previousInfo, previousSerial: previousSerial) }
            for entry in change["log_entries"]?.arrayValue ?? [] {
                if let number = entry.arrayValue?.first?.integerValue { serial = max(serial ?? number, number) }
                if let message = Self.remoteImportMessage(entry) { return try await recordListening(record, message) }
            }
            if let newInfo = change["job_info"] { info = newInfo }
            if let state = info?.arrayValue?.first?.stringValue, Coordinator.finishedJobStates.contains(state) {
                do {
                    _ = try await destination.pollJob(job, deadline: deadline)
                } catch let error as RAPIJobError where error.ecode == "temp_insufficient_resources" {
                    // move-instance's opportunistic tries: wait about the delay, then create again.
                    let attempt = record.facts.opportunisticAttempt ?? 0
                    guard attempt < request.opportunisticTries else { throw error }
                    try await Task.sleep(nanoseconds: UInt64(request.opportunisticDelay * Double.random(in: 0.85...1.15) * 1e9))
                    return try store.record(record.id, state: .sourcePrepared,
                                            detail: "temporarily insufficient resources; creation attempt \(attempt + 2)") {
                        $0.opportunisticAttempt = attempt + 1
                        $0.createSubmitted = nil
                        $0.createJob = nil
                    }
                }
                throw CoordinatorError(reason: .destinationFailed, message: "the destination job \(job) ended (\(state)) without listening")
            }
            try checkDeadline()
        }
    }

    /// The destination listens: records the signed disk addresses and certificate, and the
    /// created instance's identity (for cleanup).
    func recordListening(_ record: MoveRecord, _ message: JSONValue) async throws -> MoveRecord {
        var uuid: JSONValue?
        if let created = try? await destination.instance(request.targetName),
           (created["tags"]?.arrayValue ?? []).contains(.string(Self.moveTag(record.id))), let id = created["uuid"], id != .null {
            uuid = id
        }
        return try store.record(record.id, state: .destinationListening,
                                detail: "destination listening on \(message["disks"]?.arrayValue?.count ?? 0) disk(s)") {
            $0.remoteImport = message
            $0.destinationUUID = uuid
        }
    }

    func startExport(_ record: MoveRecord) async throws -> MoveRecord {
        if record.facts.exportSubmitted != nil,
           let job = try await findJob(source, summary: "BACKUP_EXPORT(\(request.instance))", after: record.facts.precopyJob ?? record.facts.prepareJob) {
            return try store.record(record.id, state: .exporting, detail: "found export job \(job)") { $0.exportJob = job }
        }
        try await stopSource(record)
        step(record, "export")
        _ = try store.record(record.id, detail: "submitting the export request") { $0.exportSubmitted = true }
        let job = try await source.exportInstance(request.instance, body: try await exportBody(record, resume: false))
        return try store.record(record.id, state: .exporting, detail: "export job \(job)") { $0.exportJob = job }
    }

    // MARK: Warm moves

    static let warmFeature = "gnt-move-warm-v1"

    /// A warm move needs both clusters to take pre-copy passes (`/2/features`); refused before
    /// anything is prepared, stopped or created.
    static func checkWarm(source: [String], destination: [String]) throws {
        for (end, features) in [("source", source), ("destination", destination)] where !features.contains(warmFeature) {
            throw CoordinatorError(reason: .incompatibleDestination,
                                   message: "the \(end) cluster cannot take part in a warm move (it does not offer \(warmFeature): a Ganeti cluster or an older gnt-move agent); move without --warm")
        }
    }

    /// Pre-copy passes a failed pass is run again before the move fails.
    static let maxPrecopyFailures = 3

    /// Starts the first pre-copy pass: the source keeps running.
    func startPrecopy(_ record: MoveRecord) async throws -> MoveRecord {
        let job = try await submitPrecopy(record, resume: false)
        return try store.record(record.id, state: .precopying, detail: "pre-copy pass 1: export job \(job)") {
            $0.precopyJob = job
            $0.precopySubmitted = nil
        }
    }

    /// Submits the next pre-copy pass (or finds the one a crash left unrecorded).
    func submitPrecopy(_ record: MoveRecord, resume: Bool) async throws -> Int64 {
        if record.facts.precopySubmitted == true,
           let job = try await findJob(source, summary: "BACKUP_EXPORT(\(request.instance))", after: record.facts.precopyJob ?? record.facts.prepareJob) {
            return job
        }
        let pass = (record.facts.precopyChanged?.count ?? 0) + 1
        step(record, "precopy", ["pass": .int(pass), "message": .string("pre-copy pass \(pass): copying the disks while \(request.instance) runs")])
        _ = try store.record(record.id, detail: "submitting pre-copy pass \(pass)") { $0.precopySubmitted = true }
        var body = try await exportBody(record, resume: resume).objectValue ?? [:]
        body["gnt_move_pass"] = .string("precopy")
        body["shutdown"] = .bool(false)
        return try await source.exportInstance(request.instance, body: .object(body))
    }

    /// Follows a pre-copy pass (and the destination's job, which must still wait); then runs
    /// another pass while they help, or stops the source and sends the final pass.
    func awaitPrecopy(_ record: MoveRecord) async throws -> MoveRecord {
        guard let createJob = record.facts.createJob else { throw CoordinatorError(reason: .state, message: "no create job recorded") }
        guard let job = record.facts.precopyJob, record.facts.precopySubmitted == nil else {
            // A crash while a next pass was being submitted.
            let job = try await submitPrecopy(record, resume: false)
            return try store.record(record.id, detail: "pre-copy export job \(job)") {
                $0.precopyJob = job
                $0.precopySubmitted = nil
            }
        }
        let pass = (record.facts.precopyChanged?.count ?? 0) + 1
        do {
            try await withThrowingTaskGroup(of: Bool.self) { group in
                group.addTask {
                    _ = try await followExport(job, record, finalPass: false)
                    return true
                }
                group.addTask {
                    _ = try await destination.pollJob(createJob, deadline: deadline)
                    return false
                }
                let exportEnded = try await group.next() ?? false
                group.cancelAll()
                guard exportEnded else {
                    throw CoordinatorError(reason: .destinationFailed, message: "the destination's import job \(createJob) ended during pre-copy pass \(pass)")
                }
            }
        } catch let failure as RAPIJobError where failure.jobId == createJob {
            guard let continued = try await continueImport(record, after: failure) else { throw failure }
            return continued
        } catch let failure as RAPIJobError where failure.jobId == job {
            let failures = record.facts.precopyFailures ?? 0
            guard failures < Self.maxPrecopyFailures else { throw failure }
            // The destination still waits; a pass is only a head start: run it again, continuing
            // from what the importer already holds.
            let again = try await submitPrecopy(record, resume: true)
            return try store.record(record.id, detail: "pre-copy pass \(pass) failed (\(failure.message)); export job \(again) runs it again") {
                $0.precopyJob = again
                $0.precopySubmitted = nil
                $0.precopyFailures = failures + 1
            }
        }
        let changed = Self.changedBytes(try await source.job(job))
        let passes = (record.facts.precopyChanged ?? []) + [changed]
        step(record, "precopy-done", ["pass": .int(pass), "changed_bytes": .int64(changed),
                                      "message": .string("pre-copy pass \(pass) sent \(changed) bytes while \(request.instance) ran")])
        var updated = try store.record(record.id, detail: "pre-copy pass \(pass) sent \(changed) bytes") { $0.precopyChanged = passes }
        // A further pass pays while the difference shrinks (the first pass is the whole disk).
        if passes.count < request.warmPasses, passes.count == 1 || changed < passes[passes.count - 2] {
            let next = try await submitPrecopy(updated, resume: false)
            updated = try store.record(record.id, detail: "pre-copy pass \(passes.count + 1): export job \(next)") {
                $0.precopyJob = next
                $0.precopySubmitted = nil
            }
            return updated
        }
        return try await startExport(updated)
    }

    /// The bytes an export job's disks sent as changed, summed over its disks.
    static func changedBytes(_ job: JSONValue) -> Int64 { ExportJobLog.total(.changed, in: job) }

    /// The export request. The source is removed only after the destination confirmed every disk
    /// (a separate step), never by the export itself. Between gnt-move agents that can continue a
    /// transfer, the source keeps its key if the export fails (cleanup removes it) and `resume`
    /// asks the exporter to continue from the importer's journal.
    func exportBody(_ record: MoveRecord, resume: Bool) async throws -> JSONValue {
        let remote = record.facts.remoteImport ?? .null
        let prepared = record.facts.prepared ?? .null
        var body: [String: JSONValue] = [
            "mode": .string("remote"), "destination": remote["disks"] ?? .null, "shutdown": .bool(true),
            "remove_instance": .bool(false), "x509_key_name": prepared["x509_key_name"] ?? .null,
            "destination_x509_ca": remote["x509_ca"] ?? .null, "compress": .string(request.compress.rawValue),
        ]
        let features = try await source.features()
        if let limit = request.bandwidthLimit, features.contains("gnt-move-stream-v1") {
            body["gnt_move_bwlimit"] = .int64(limit)
        }
        if try await canContinueTransfers() {
            body["gnt_move_continuable"] = .bool(true)
            if resume { body["gnt_move_resume"] = .bool(true) }
        }
        return .object(body)
    }

    /// Whether both clusters continue a broken gnt-move/1 transfer (`/2/features`): the source
    /// keeps its key and resumes, the destination's importer waits for it.
    func canContinueTransfers() async throws -> Bool {
        let feature = "gnt-move-continue-v1"
        guard try await source.features().contains(feature) else { return false }
        return try await destination.features().contains(feature)
    }

    /// Stops a running source before its export. The export's own `shutdown` would do it too,
    /// but Ganeti then wants to snapshot the disks of an instance it is to restart (and refuses
    /// file and plain disks without `long_sleep`, which older versions reject): a stopped
    /// instance is exported as it is on every version, and is not restarted by the export.
    func stopSource(_ record: MoveRecord) async throws {
        guard record.facts.sourceStopped == nil else { return }
        if record.facts.stopStarted == nil {
            _ = try store.record(record.id, detail: "stopping the source: downtime starts") { $0.stopStarted = Date().timeIntervalSince1970 }
        }
        let current = try await source.instance(request.instance)
        if current["admin_state"]?.stringValue == "up" || current["oper_state"]?.boolValue == true {
            step(record, "stop-source")
            _ = try await source.pollJob(try await source.shutdown(request.instance), deadline: deadline)
        }
        _ = try store.record(record.id, detail: "source instance stopped") { $0.sourceStopped = true }
    }

    /// Follows both jobs; every disk must be confirmed by both sides.
    func awaitDisks(_ record: MoveRecord) async throws -> MoveRecord {
        guard record.facts.exportJob != nil, let createJob = record.facts.createJob else {
            throw CoordinatorError(reason: .state, message: "jobs missing from the record")
        }
        // Both jobs are followed at once: a disk that fails on either side fails the attempt
        // as soon as that side knows, not after the other side gives up.
        var record = record
        var exported: JSONValue = .null
        while true {
            let current = record
            guard let exportJob = current.facts.exportJob else { throw CoordinatorError(reason: .state, message: "no export job recorded") }
            do {
                exported = try await withThrowingTaskGroup(of: JSONValue?.self) { group in
                    group.addTask { try await followExport(exportJob, current, finalPass: true) }
                    group.addTask {
                        _ = try await destination.pollJob(createJob, deadline: deadline)
                        return nil
                    }
                    var exported: JSONValue = .null
                    for try await result in group { if let result { exported = result } }
                    return exported
                }
                break
            } catch let failure as RAPIJobError where failure.jobId == exportJob {
                guard let continued = try await continueExport(current, after: failure) else { throw failure }
                record = continued
            } catch let failure as RAPIJobError where failure.jobId == createJob {
                guard let continued = try await continueImport(current, after: failure) else { throw failure }
                return continued
            }
        }
        guard exported.arrayValue?.first?.boolValue == true, (exported.arrayValue?.last?.arrayValue ?? []).allSatisfy({ $0.boolValue == true }) else {
            throw CoordinatorError(reason: .exportFailed, message: "the export reported failed disks: \(exported.serialized)")
        }
        let downtime = record.facts.stopStarted.map { max(0, Date().timeIntervalSince1970 - $0) }
        // After a continued import: what the destination's disks kept is what was not sent again.
        var kept: Int64?
        if record.facts.importContinuations != nil, let job = record.facts.exportJob, let status = try? await source.job(job) {
            let total = (record.facts.spec?["disks"]?.arrayValue ?? []).reduce(Int64(0)) { $0 + (($1["size"]?.integerValue ?? 0) << 20) }
            kept = max(0, total - Self.changedBytes(status))
        }
        return try store.record(record.id, state: .disksDone, detail: "every disk confirmed by both clusters") {
            $0.exportResult = exported
            $0.downtimeSeconds = downtime
            $0.keptBytes = kept
        }
    }

    /// The export failed on the source (its daemon died, its agent restarted) while the
    /// destination still waits: export again, continuing from the importer's journal, with the
    /// same key and the same signed disk addresses. Nil when that is not possible (a peer without
    /// the capability, a destination that gave up, the limit of continuations reached): the
    /// attempt then fails and is cleaned up as before.
    func continueExport(_ record: MoveRecord, after failure: RAPIJobError) async throws -> MoveRecord? {
        let done = record.facts.exportContinuations ?? 0
        guard try await canContinueTransfers() else {
            // Ganeti's stream keeps no journal: say that the next attempt starts the disks again.
            throw RAPIJobError(jobId: failure.jobId, errorClass: failure.errorClass,
                               message: failure.message + " (a broken transfer continues only between clusters with gnt-move-continue-v1, not with a Ganeti peer: the disks start again)",
                               ecode: failure.ecode)
        }
        guard done < Self.maxExportContinuations, let createJob = record.facts.createJob,
              let state = try? await destination.job(createJob)["status"]?.stringValue, !Coordinator.finishedJobStates.contains(state) else {
            return nil
        }
        coordinator.emit(MoveEvent(.step, move: record, ["step": .string("resume-transfer"), "state": .string(record.state.rawValue),
                                                         "message": .string("the export failed (\(failure.message)); the destination still waits: exporting again from where its journal stopped")]))
        let job = try await source.exportInstance(request.instance, body: try await exportBody(record, resume: true))
        return try store.record(record.id, detail: "export job \(job) continues the transfer after: \(failure.message)") {
            $0.exportJob = job
            $0.exportContinuations = done + 1
        }
    }

    /// Exports started again for one attempt before it is given up.
    static let maxExportContinuations = 5

    static let importContinueFeature = "gnt-move-import-continue-v1"
    /// Imports continued for one attempt before it is given up.
    static let maxImportContinuations = 5

    /// The destination's import failed (its daemon died, its agent restarted) and it kept the
    /// half-imported instance: stop the source's export, then ask the destination to import again
    /// into the disks it kept, with fresh keys and addresses; the next export sends only the
    /// chunks that differ from what they hold. Nil when that is not possible (a destination
    /// without the capability, the limit reached): the attempt fails and is cleaned up.
    func continueImport(_ record: MoveRecord, after failure: RAPIJobError) async throws -> MoveRecord? {
        let done = record.facts.importContinuations ?? 0
        guard done < Self.maxImportContinuations, try await destination.features().contains(Self.importContinueFeature),
              try await source.features().contains("gnt-move-continue-v1") else { return nil }
        // Only an import the destination kept for this move (not removed: a refusal, a verdict
        // about the data, a canceled job) is continued.
        guard let kept = try? await destination.instance(request.targetName),
              (kept["tags"]?.arrayValue ?? []).contains(.string(Self.moveTag(record.id))),
              kept["gnt_move_lifecycle"]?.stringValue == "import-interrupted" else { return nil }
        // The export must end (it keeps its key: it is continuable) before another one starts.
        for job in [record.facts.precopyJob, record.facts.exportJob].compactMap({ $0 }) {
            if let state = try? await source.job(job)["status"]?.stringValue, !Coordinator.finishedJobStates.contains(state) {
                _ = try? await source.cancelJob(job)
                await coordinator.waitUntilFinished(job, on: source, timeout: Coordinator.cancelWait)
            }
        }
        coordinator.emit(MoveEvent(.step, move: record, ["step": .string("resume-transfer"), "state": .string(record.state.rawValue),
                                                         "message": .string("the destination's import failed (\(failure.message)); it kept what it received: importing again into it, only the chunks that differ are sent")]))
        return try store.record(record.id, state: .sourcePrepared, detail: "continuing the destination's import after: \(failure.message)") {
            $0.importContinuations = done + 1
            $0.continueImport = true
            $0.supersededCreateJob = $0.createJob
            $0.createSubmitted = nil
            $0.createJob = nil
            $0.remoteImport = nil
            $0.exportSubmitted = nil
            $0.exportJob = nil
            $0.precopySubmitted = nil
            $0.precopyJob = nil
        }
    }

    /// Follows the source's export job, turning its log into progress, disk-done and
    /// resume-transfer events; returns its result.
    func followExport(_ job: Int64, _ record: MoveRecord, finalPass: Bool) async throws -> JSONValue {
        try await source.pollJob(job, deadline: deadline) { entry in
            guard let parts = entry.arrayValue, parts.count >= 4, let message = parts[3].stringValue else { return }
            if message.contains(" sent ") {
                var fields = Self.progress(message)
                let disks = record.facts.spec?["disks"]?.arrayValue ?? []
                if let disk = fields["disk"]?.integerValue, disks.indices.contains(Int(disk)), let size = disks[Int(disk)]["size"]?.integerValue {
                    fields["total"] = .int64(size << 20)
                }
                coordinator.emit(MoveEvent(.progress, move: record, fields))
            }
            if finalPass, message.contains("finished sending data") { coordinator.emit(MoveEvent(.diskDone, move: record, ["message": .string(message)])) }
            if let resumed = Self.continuation(message) {
                _ = try? store.record(record.id, detail: "disk \(resumed.disk) continues at byte \(resumed.offset) after a broken connection") {
                    $0.transferResumes = ($0.transferResumes ?? []) + [TransferResume(disk: resumed.disk, offset: resumed.offset)]
                }
                coordinator.emit(MoveEvent(.step, move: record, ["step": .string("resume-transfer"), "state": .string(record.state.rawValue),
                                                                 "disk": .int(resumed.disk), "offset": .int64(resumed.offset), "message": .string(message)]))
            }
        }
    }

    func finalize(_ record: MoveRecord) async throws -> MoveRecord {
        let moved = try await destination.instance(request.targetName)
        return try store.record(record.id, state: .finalized,
                                detail: "destination instance \(request.targetName) is \(moved["status"]?.stringValue ?? "present")") { $0.finalized = true }
    }

    func removeSource(_ record: MoveRecord) async throws -> MoveRecord {
        guard !request.keepSourceInstance else {
            return try store.record(record.id, state: .sourceRemoved, detail: "source instance kept (--keep-source-instance)")
        }
        step(record, "remove-source")
        do {
            let job = try await source.deleteInstance(request.instance)
            _ = try store.record(record.id, detail: "remove job \(job)") { $0.removeJob = job }
            _ = try await source.pollJob(job, deadline: deadline)
        } catch let error as RAPIError where error.status == 404 {
            // Already removed by an earlier attempt.
        }
        return try store.record(record.id, state: .sourceRemoved, detail: "source instance removed") { $0.sourceRemoved = true }
    }

    /// The message of a job's `remote-import` log entry, if it has one; entries of any shape are
    /// read without trusting their length.
    static func remoteImportEntry(_ job: JSONValue) -> JSONValue? {
        (job["oplog"]?.arrayValue?.first?.arrayValue ?? []).lazy.compactMap(remoteImportMessage).first
    }

    /// The message of a `remote-import` job-log entry `[serial, time, "remote-import", message]`.
    static func remoteImportMessage(_ entry: JSONValue) -> JSONValue? {
        guard let parts = entry.arrayValue, parts.count >= 4, parts[2].stringValue == "remote-import" else { return nil }
        return parts[3]
    }

    /// The newest job whose summary matches, for a request whose job id a crash lost.
    func findJob(_ client: RAPIClient, summary: String, after: Int64? = nil) async throws -> Int64? {
        let jobs = (try await client.request(.GET, "/2/jobs").arrayValue ?? []).compactMap { $0["id"].flatMap { try? RAPIClient.jobId($0) } }
        for id in jobs.sorted(by: >) where id > (after ?? 0) {
            let job = try await client.job(id)
            if job["summary"]?.arrayValue?.first?.stringValue == summary { return id }
        }
        return nil
    }

    /// A gnt-move agent's `Disk N continues at byte OFFSET …` (a broken connection resumed from
    /// the importer's journal).
    static func continuation(_ message: String) -> (disk: Int, offset: Int64)? {
        let words = message.split(separator: " ")
        guard words.count >= 5, words[0] == "Disk", words[2] == "continues", words[3] == "at", words[4] == "byte",
              let disk = Int(words[1]), words.count > 5, let offset = Int64(words[5]) else { return nil }
        return (disk, offset)
    }

    /// Parses Ganeti's `Disk N sent 1.5G, 12.0 MiB/s, 30%` into event fields.
    static func progress(_ message: String) -> [String: JSONValue] {
        var fields: [String: JSONValue] = ["message": .string(message)]
        let words = message.split(separator: " ")
        if words.count > 1, let disk = Int(words[1]) { fields["disk"] = .int(disk) }
        let parts = message.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        if let first = parts.first, let amount = first.split(separator: " ").last, let unit = amount.last, let value = Double(amount.dropLast()) {
            let scales: [Character: Double] = ["M": 1_048_576, "G": 1_073_741_824, "T": 1_099_511_627_776]
            let scale = scales[unit] ?? 1
            fields["bytes"] = .int64(Int64(value * scale))
        }
        for part in parts.dropFirst() {
            if part.hasSuffix("MiB/s"), let rate = Double(part.dropLast(6)) { fields["rate_mib_s"] = .double(rate) }
            else if part.hasSuffix("%"), let percent = Int(part.dropLast()) { fields["percent"] = .int(percent) }
            else if part.hasPrefix("ETA ") {
                var seconds = 0
                for piece in part.dropFirst(4).split(separator: " ") {
                    let number = Int(piece.dropLast()) ?? 0
                    seconds += number * (["d": 86400, "h": 3600, "m": 60, "s": 1][piece.last ?? "s"] ?? 1)
                }
                fields["eta_seconds"] = .int(seconds)
            }
        }
        return fields
    }
}
