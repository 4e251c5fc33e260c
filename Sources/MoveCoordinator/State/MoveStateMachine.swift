import Foundation
import MoveTrust

// The move, in one place: its states, the transitions between them, what each step records
// (`MoveFacts`), and why a move fails (`FailureReason`) and whether that failure is worth a
// fresh attempt. `MoveStore` refuses any transition this table does not list.
//
//   planned ──prepare-export──▶ source-prepared ──create (remote-import)──▶ destination-created
//      ▲                              ▲                                            │
//      │                              └──── temp_insufficient_resources ───────────┤
//      │                                                                           ▼
//      │          exporting ◀──stop source, export── destination-listening ◀── signed disk info
//      │              ▲                                    │ (warm)
//      │              └── stop source, final pass ── precopying ◀┘ (passes while the source runs)
//      │              │
//      │              ▼
//      │          disks-done ──▶ finalized ──▶ source-removed ──▶ done
//      │
//      └── retry ── cleaned ◀── cleanup ── failed ◀── any state before done

/// The states of a move (docs/architecture.md, "The coordinator's state machine").
public enum MoveState: String, Sendable, CaseIterable {
    /// Recorded; nothing asked of either cluster.
    case planned
    /// The source made the per-move key and signed its certificate (`prepared`, `spec`, `tags`,
    /// `source_was_running`, `prepare_job`).
    case sourcePrepared = "source-prepared"
    /// The destination accepted the remote-import request (`create_submitted`, then `create_job`).
    case destinationCreated = "destination-created"
    /// The destination listens on every disk and published its signed addresses
    /// (`remote_import`, `destination_uuid`).
    case destinationListening = "destination-listening"
    /// A warm move copies the disks while the source runs, pass after pass
    /// (`precopy_submitted`, `precopy_job`, `precopy_changed`): the destination keeps listening.
    case precopying
    /// The source was stopped (`source_stopped`, `stop_started`) and streams every disk
    /// (`export_submitted`, then `export_job`); after a warm move's pre-copy this final pass sends
    /// only the chunks that differ from what the destination holds.
    case exporting
    /// Both clusters confirmed every disk (`export_result`).
    case disksDone = "disks-done"
    /// The destination holds the verified copy (`finalized`): from here on the source is never
    /// started again.
    case finalized
    /// The source instance is gone (`remove_job`, `source_removed`), or kept as asked.
    case sourceRemoved = "source-removed"
    case done
    /// Given up, for `reason`; cleanup follows.
    case failed
    /// Cleanup ran: jobs canceled, what the move created removed, the source restarted if it ran.
    case cleaned

    public var isFinal: Bool { self == .done || self == .cleaned }

    /// The states a move may go to from this one. Recording facts without a new state is
    /// always allowed.
    public var successors: Set<MoveState> {
        switch self {
        case .planned: [.sourcePrepared, .failed]
        case .sourcePrepared: [.destinationCreated, .failed]
        // Back to source-prepared: Ganeti answered temp_insufficient_resources, create again.
        case .destinationCreated: [.destinationListening, .sourcePrepared, .failed]
        case .destinationListening: [.exporting, .precopying, .failed]
        // Back to source-prepared: the destination's import failed and kept its disks; it is asked
        // to import again into them (gnt_move_continue).
        case .precopying: [.exporting, .sourcePrepared, .failed]
        case .exporting: [.disksDone, .sourcePrepared, .failed]
        case .disksDone: [.finalized, .failed]
        case .finalized: [.sourceRemoved, .failed]
        case .sourceRemoved: [.done, .failed]
        case .done: []
        case .failed: [.cleaned]
        // A retry starts the move again from the beginning, with fresh keys.
        case .cleaned: [.planned]
        }
    }

    public func canMove(to next: MoveState) -> Bool { next == self || successors.contains(next) }
}

/// Why a move failed, for operators (`status`, events) and for the retry decision.
public enum FailureReason: String, Sendable, CaseIterable {
    /// A cluster refused the request (Ganeti's `OpPrereqError` ecodes, a 4xx answer, an
    /// unoffered compression): the same request gets the same answer.
    case refused
    case badRequest = "bad-request"
    case credentials
    case instanceNotFound = "instance-not-found"
    case incompatibleDestination = "incompatible-destination"
    case unknownMove = "unknown-move"
    case aborted
    case timeout
    /// A job failed while executing (`OpExecError`): a transfer broke, a daemon died.
    case jobFailed = "job-failed"
    /// A RAPI call failed in a way that may pass (5xx, a timeout answer).
    case rapi
    /// A cluster could not be reached.
    case connection
    case exportFailed = "export-failed"
    case destinationFailed = "destination-failed"
    /// The state database or the record is not what the step needs.
    case state
    case demo
    case `internal`

    /// Whether a fresh attempt (cleanup, then the move again from the start with new keys) may
    /// succeed. Every case must be decided here.
    public var isRetried: Bool {
        switch self {
        case .jobFailed, .rapi, .connection, .exportFailed, .destinationFailed: true
        case .refused, .badRequest, .credentials, .instanceNotFound, .incompatibleDestination, .unknownMove, .aborted, .timeout,
             .state, .demo, .internal: false
        }
    }
}

/// A disk transfer whose connection broke and that continued at `offset` (the bytes before it
/// were kept, not sent again).
public struct TransferResume: Sendable, Equatable, Codable {
    public var disk: Int
    public var offset: Int64
}

/// What a move has learnt, step by step (see `MoveState`). Stored as one JSON object with
/// snake_case keys; a key the struct does not name cannot be written. The relayed material
/// (`prepared`, `remote_import`) stays a `JSONValue` read and written by MoveTrust's exact
/// coders (`JSONValueEncoder`), never Foundation's: its signatures cover Python's rendering of
/// each field, so `40123` must not come back as `40123.0`.
public struct MoveFacts: Sendable, Equatable, Codable {
    /// Fresh attempts so far (1 for the first).
    public var attempts: Int?
    /// Whether the source instance ran before the move began (kept across retries).
    public var sourceWasRunning: Bool?
    public var prepareJob: Int64?
    /// The source's instance data (`/2/instances/NAME/info`) and its tags.
    public var spec: JSONValue?
    public var tags: JSONValue?
    /// The destination's default iallocator, when the request names neither node nor allocator.
    public var iallocator: JSONValue?
    /// The prepare-export result: key name, signed certificate, handshake (relayed, signed).
    public var prepared: JSONValue?
    /// Creation attempts made with opportunistic locking.
    public var opportunisticAttempt: Int?
    /// The remote-import request was sent; its job id may not be recorded yet.
    public var createSubmitted: Bool?
    public var createJob: Int64?
    /// The destination's `remote-import` log message: the signed disk addresses and certificate.
    public var remoteImport: JSONValue?
    public var destinationUUID: JSONValue?
    public var sourceStopped: Bool?
    public var exportSubmitted: Bool?
    public var exportJob: Int64?
    public var exportResult: JSONValue?
    /// Broken disk transfers that continued from the importer's journal: what was kept.
    public var transferResumes: [TransferResume]?
    /// Export jobs started again to continue a transfer whose exporter failed.
    public var exportContinuations: Int?
    /// A warm move's pre-copy pass was requested; its job id may not be recorded yet.
    public var precopySubmitted: Bool?
    /// The running (or last) pre-copy pass's export job.
    public var precopyJob: Int64?
    /// Bytes each finished pre-copy pass sent (all disks), in order.
    public var precopyChanged: [Int64]?
    /// Pre-copy passes that failed and were run again.
    public var precopyFailures: Int?
    /// The next remote-import continues an interrupted one into the disks it kept.
    public var continueImport: Bool?
    /// The create job a continued import replaced (a lost job id is looked for after it).
    public var supersededCreateJob: Int64?
    /// Imports continued in this attempt.
    public var importContinuations: Int?
    /// Disk bytes a continued import kept (what its disks held and were not sent again).
    public var keptBytes: Int64?
    /// When the coordinator began to stop the source (Unix time): downtime starts here.
    public var stopStarted: Double?
    /// Seconds from `stop_started` until the destination held (and, if asked, started) the
    /// verified copy.
    public var downtimeSeconds: Double?
    public var finalized: Bool?
    public var removeJob: Int64?
    public var sourceRemoved: Bool?

    public init() {}

    /// The stored keys.
    enum CodingKeys: String, CodingKey, CaseIterable {
        case attempts, spec, tags, iallocator, prepared, finalized
        case sourceWasRunning = "source_was_running", prepareJob = "prepare_job", opportunisticAttempt = "opportunistic_attempt"
        case createSubmitted = "create_submitted", createJob = "create_job", remoteImport = "remote_import"
        case destinationUUID = "destination_uuid", sourceStopped = "source_stopped", exportSubmitted = "export_submitted"
        case exportJob = "export_job", exportResult = "export_result", removeJob = "remove_job", sourceRemoved = "source_removed"
        case transferResumes = "transfer_resumes", exportContinuations = "export_continuations"
        case precopySubmitted = "precopy_submitted", precopyJob = "precopy_job", precopyChanged = "precopy_changed"
        case precopyFailures = "precopy_failures", stopStarted = "stop_started", downtimeSeconds = "downtime_seconds"
        case continueImport = "continue_import", supersededCreateJob = "superseded_create_job", importContinuations = "import_continuations"
        case keptBytes = "kept_bytes"
    }

    /// The jobs started so far, by step (`status`).
    public var jobs: [String: Int64] {
        var jobs: [String: Int64] = [:]
        for (key, id) in [(CodingKeys.prepareJob, prepareJob), (.createJob, createJob), (.precopyJob, precopyJob), (.exportJob, exportJob),
                          (.removeJob, removeJob)] {
            if let id { jobs[key.rawValue] = id }
        }
        return jobs
    }

    /// What a fresh attempt keeps: how many attempts were made, and whether the source ran
    /// before the first one.
    func forRetry() -> MoveFacts {
        var kept = MoveFacts()
        kept.attempts = (attempts ?? 1) + 1
        kept.sourceWasRunning = sourceWasRunning
        return kept
    }

    /// The stored form: one JSON object (absent facts are left out).
    public var json: JSONValue {
        // Integers, booleans and JSON trees only: encoding cannot fail.
        (try? JSONValueEncoder().encode(self)) ?? .object([:])
    }

    /// Reads the stored form; keys it does not know (from another version) are ignored, and a
    /// value of the wrong type is an error naming the fact.
    public init(json: JSONValue) throws(JSONCodingError) {
        self = try JSONValueDecoder().decode(MoveFacts.self, from: json)
    }
}
