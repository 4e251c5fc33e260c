import Foundation
import Logging
import MoveTrust

/// The third party of a move: drives the source and the destination through RAPI, relaying
/// only signed material, and records every step so that a crash of any process loses or
/// duplicates nothing (`resume` continues from the recorded state).
public final class Coordinator: Sendable {
    public let store: MoveStore
    public let retry: RetryPolicy
    let emit: @Sendable (MoveEvent) -> Void
    let logger: Logger

    /// Without a logger, only warnings are logged (the events already tell the story); the CLI
    /// passes one set up by `--verbose`/`--debug`.
    public init(store: MoveStore, retry: RetryPolicy = .standard, logger: Logger? = nil, emit: @escaping @Sendable (MoveEvent) -> Void) {
        self.store = store
        self.retry = retry
        self.logger = logger ?? {
            var quiet = Logger(label: "gnt-move.coordinator")
            quiet.logLevel = .warning
            return quiet
        }()
        self.emit = emit
    }

    /// Records and runs a new move; returns its final record.
    public func run(_ given: MoveRequest) async -> MoveRecord {
        let request: MoveRequest
        do {
            try given.validate()
            request = try given.loadingCredentials()
        } catch {
            let failure = error as? CoordinatorError ?? CoordinatorError(reason: .badRequest, message: "\(error)")
            let record = MoveRecord(id: "-", instance: given.instance, request: given.json, state: .failed, facts: MoveFacts(),
                                    error: failure.message, reason: failure.reason, created: 0, updated: 0)
            emit(MoveEvent(.moveFailed, move: record, ["reason": .string(failure.reason.rawValue), "message": .string(failure.message)]))
            return record
        }
        do {
            let record = try store.create(request)
            emit(MoveEvent(.moveStarted, move: record, ["destination_instance": .string(request.targetName)]))
            Self.crashIfAsked(after: .planned)
            return await drive(record.id, request: request)
        } catch {
            let record = MoveRecord(id: "-", instance: request.instance, request: request.json, state: .failed, facts: MoveFacts(),
                                    error: "\(error)", reason: .state, created: 0, updated: 0)
            emit(MoveEvent(.moveFailed, move: record, ["reason": .string(FailureReason.state.rawValue), "message": .string("\(error)")]))
            return record
        }
    }

    /// Continues a recorded move from its state.
    public func resume(_ id: String) async throws -> MoveRecord {
        guard let record = try store.move(id) else { throw CoordinatorError(reason: .unknownMove, message: "no move \(id) in \(store.directory)") }
        if record.state.isFinal { return record }
        let request = try MoveRequest(json: record.request).loadingCredentials()
        emit(MoveEvent(.step, move: record, ["step": .string("resume"), "state": .string(record.state.rawValue)]))
        return await drive(id, request: request)
    }

    /// Stops a move: cancels its jobs, removes a half-created destination, starts the source
    /// again if it was running.
    public func abort(_ id: String) async throws -> MoveRecord {
        guard let record = try store.move(id) else { throw CoordinatorError(reason: .unknownMove, message: "no move \(id) in \(store.directory)") }
        if record.state.isFinal { return record }
        let request = try MoveRequest(json: record.request).loadingCredentials()
        let failed = try store.record(id, state: .failed, detail: "aborted by the operator", error: "aborted", reason: .aborted)
        return await cleanUp(failed, request: request)
    }

    /// Runs the move to its end, trying again as `retry` decides.
    func drive(_ id: String, request: MoveRequest) async -> MoveRecord {
        var attempt = 1
        while true {
            let record = await driveOnce(id, request: request)
            guard retry.retries(record, after: attempt) else { return record }
            try? await Task.sleep(nanoseconds: UInt64(retry.delay(after: attempt) * 1e9))
            attempt += 1
            guard let restarted = try? store.restart(id, detail: "attempt \(attempt) after: \(record.error ?? "")") else { return record }
            emit(MoveEvent(.step, move: restarted, ["step": .string("retry"), "state": .string(restarted.state.rawValue),
                                                    "message": .string("attempt \(attempt), from the start, after: \(record.error ?? "")")]))
        }
    }

    func driveOnce(_ id: String, request: MoveRequest) async -> MoveRecord {
        let source: RAPIClient, destination: RAPIClient
        do {
            source = try RAPIClient(endpoint: request.source)
            destination = try RAPIClient(endpoint: request.destination)
        } catch {
            return (try? fail(id, reason: .connection, "\(error)")) ?? placeholder(id)
        }
        var steps = MoveSteps(coordinator: self, request: request, source: source, destination: destination)
        if let timeout = request.timeout, let created = try? current(id).created {
            steps.deadline = Date(timeIntervalSince1970: created + timeout)
        }
        do {
            var record = try current(id)
            while !record.state.isFinal && record.state != .failed {
                record = try await steps.advance(record)
                logger.info("\(record.instance) [\(record.id)]: \(record.state.rawValue)")
                Self.crashIfAsked(after: record.state)
            }
            if record.state == .done {
                var fields: [String: JSONValue] = ["destination_instance": .string(request.targetName),
                                                   "seconds": .double((record.updated - record.created).rounded())]
                if let downtime = record.facts.downtimeSeconds { fields["downtime_seconds"] = .double((downtime * 1000).rounded() / 1000) }
                emit(MoveEvent(.moveDone, move: record, fields))
            }
            if record.state == .failed { return await cleanUp(record, request: request) }
            return record
        } catch {
            let reason: FailureReason
            switch error {
            case let coordinatorError as CoordinatorError: reason = coordinatorError.reason
            case let jobError as RAPIJobError: reason = jobError.isRefusal ? .refused : .jobFailed
            case let rapiError as RAPIError: reason = rapiError.isRefusal ? .refused : .rapi
            default: reason = .internal
            }
            guard let failed = try? fail(id, reason: reason, "\(error)") else { return placeholder(id) }
            return await cleanUp(failed, request: request)
        }
    }

    /// Fault injection for the crash-resume tests: `GNT_MOVE_CRASH_AFTER=<state>` makes the
    /// coordinator kill itself with SIGKILL right after recording that state.
    static func crashIfAsked(after state: MoveState) {
        if ProcessInfo.processInfo.environment["GNT_MOVE_CRASH_AFTER"] == state.rawValue { kill(getpid(), SIGKILL) }
    }

    func current(_ id: String) throws -> MoveRecord {
        guard let record = try store.move(id) else { throw CoordinatorError(reason: .unknownMove, message: "no move \(id)") }
        return record
    }

    func placeholder(_ id: String) -> MoveRecord {
        (try? store.move(id)) ?? MoveRecord(id: id, instance: "", request: .null, state: .failed, facts: MoveFacts(), error: nil, reason: nil, created: 0, updated: 0)
    }

    func fail(_ id: String, reason: FailureReason, _ message: String) throws -> MoveRecord {
        try store.record(id, state: .failed, detail: message, error: message, reason: reason)
    }

    /// The failure path: cancel the jobs, remove what the destination half-created, restart the
    /// source if it was running and still exists. Never touches a source that may be the only copy.
    func cleanUp(_ record: MoveRecord, request: MoveRequest) async -> MoveRecord {
        var notes: [String] = []
        let source = try? RAPIClient(endpoint: request.source)
        let destination = try? RAPIClient(endpoint: request.destination)
        var canceled: [(Int64, RAPIClient)] = []
        for (key, job, client) in [("pre-copy", record.facts.precopyJob, source), ("export", record.facts.exportJob, source),
                                   ("create", record.facts.createJob, destination)] {
            if let id = job, let client {
                if let status = try? await client.job(id), let state = status["status"]?.stringValue, !Self.finishedJobStates.contains(state) {
                    _ = try? await client.cancelJob(id)
                    canceled.append((id, client))
                    notes.append("canceled \(key) job \(id)")
                }
            }
        }
        // A canceled job winds down on its cluster (a destination removes what it half-created):
        // wait for that before deciding what is left to remove, so cleanup sees the final state.
        for (id, client) in canceled { await waitUntilFinished(id, on: client, timeout: Self.cancelWait) }
        // The destination instance goes only if this move provably made it and never completed it.
        if record.facts.finalized == nil, let destination {
            switch await destinationOwnership(record, request: request, destination: destination) {
            case .owned:
                if let job = try? await destination.deleteInstance(request.targetName) { _ = try? await destination.pollJob(job) }
                notes.append("removed the half-created \(request.targetName) on the destination")
            case .absent:
                break
            case .notOwned(let why):
                notes.append("left \(request.targetName) on the destination untouched: \(why)")
            }
        }
        // The source's key goes with a started export; a key no export used (or a refused export left) goes here.
        if let source, let prepared = record.facts.prepared {
            await discardKey(prepared, on: source)
        }
        // Once the destination was finalized it holds the verified copy and may run: starting the
        // source again would run the instance twice.
        if record.facts.sourceWasRunning == true, record.facts.sourceRemoved == nil, record.facts.finalized == nil, let source,
           let info = try? await source.instance(request.instance), info["oper_state"]?.boolValue != true {
            if let job = try? await source.startup(request.instance) { _ = try? await source.pollJob(job) }
            notes.append("started \(request.instance) again on the source")
        }
        let cleaned = (try? store.record(record.id, state: .cleaned, detail: notes.isEmpty ? "nothing to clean" : notes.joined(separator: "; "))) ?? record
        emit(MoveEvent(.moveFailed, move: cleaned, ["reason": .string((record.reason ?? .internal).rawValue), "message": .string(record.error ?? ""),
                                                       "cleanup": .array(notes.map(JSONValue.string))]))
        return cleaned
    }

    static let finishedJobStates = ["success", "error", "canceled"]
    /// How long cleanup waits for a canceled job to end.
    static let cancelWait = 60.0

    func waitUntilFinished(_ id: Int64, on client: RAPIClient, timeout: Double) async {
        do {
            _ = try await client.pollJob(id, deadline: Date().addingTimeInterval(timeout))
            return
        } catch let error as CoordinatorError where error.reason == .timeout {
        } catch {
            return  // ended in error or canceled, or the cluster cannot tell: nothing to wait for
        }
        logger.warning("job \(id) did not end within \(Int(timeout)) s of its cancel; cleaning up around it")
    }

    enum Ownership: Equatable {
        case owned
        case absent
        case notOwned(String)
    }

    /// Whether the destination instance named by the request is this move's own: its create job
    /// got as far as creating it (it succeeded or published its listening addresses), and the
    /// instance carries this move's tag (and, once recorded, its uuid). Anything less and the
    /// instance may be someone else's: a taken name, a finished earlier move, a production VM.
    func destinationOwnership(_ record: MoveRecord, request: MoveRequest, destination: RAPIClient) async -> Ownership {
        var createJob = record.facts.createJob
        if createJob == nil, record.facts.createSubmitted == true {
            let steps = MoveSteps(coordinator: self, request: request, source: destination, destination: destination)
            createJob = try? await steps.findJob(destination, summary: "INSTANCE_CREATE(\(request.targetName))")
        }
        guard let createJob else { return .absent }
        var created = record.facts.remoteImport != nil
        if !created, let job = try? await destination.job(createJob) {
            created = job["status"]?.stringValue == "success" || MoveSteps.remoteImportEntry(job) != nil
        }
        guard created else { return .absent }
        let info: JSONValue
        do {
            info = try await destination.instance(request.targetName)
        } catch let error as RAPIError where error.status == 404 {
            return .absent
        } catch {
            return .notOwned("cannot read it to check it is this move's (\(error))")
        }
        guard (info["tags"]?.arrayValue ?? []).contains(.string(MoveSteps.moveTag(record.id))) else {
            return .notOwned("it does not carry this move's tag \(MoveSteps.moveTag(record.id))")
        }
        if let uuid = record.facts.destinationUUID, info["uuid"] != uuid {
            return .notOwned("its uuid \(info["uuid"]?.stringValue ?? "?") is not the one this move created (\(uuid.stringValue ?? "?"))")
        }
        return .owned
    }
}
