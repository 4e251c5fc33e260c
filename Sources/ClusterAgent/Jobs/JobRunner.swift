import Foundation
import MoveTrust
import Synchronization

/// What a running operation can do with its job: log, and notice a cancel request.
public struct JobContext: Sendable {
    public let id: Int64
    let database: AgentDatabase
    let runner: JobRunner

    /// A `message` entry, shown by `move-instance` and `gnt-move` as progress.
    public func log(_ message: String) {
        try? database.appendLog(id, type: "message", message: .string(message))
    }

    /// An entry of another type, e.g. `remote-import`.
    public func log(type: String, _ message: JSONValue) throws {
        try database.appendLog(id, type: type, message: message)
    }

    public var isCanceled: Bool { runner.isCancelRequested(id) }

    /// Throws when a cancel was asked for, between steps of an operation.
    public func checkCanceled() throws {
        if isCanceled { throw JobCanceled() }
    }
}

struct JobCanceled: Error {}

/// Runs jobs: each is recorded before it runs, and its status, log and result are written to
/// SQLite as they change, so that `GET /2/jobs/ID` answers after a restart too.
public final class JobRunner: Sendable {
    public typealias Operation = @Sendable (JobContext) async throws -> JSONValue

    let database: AgentDatabase
    /// Counts every job that ends, by opcode and outcome.
    let metrics: AgentMetrics?
    private let cancelRequests = Mutex<Set<Int64>>([])
    private let running = Mutex<[Int64: Task<Void, Never>]>([:])

    public init(database: AgentDatabase, metrics: AgentMetrics? = nil) {
        self.database = database
        self.metrics = metrics
    }

    /// Records the job and starts it. `op` is the opcode as Ganeti shows it in `ops`.
    public func submit(op: JSONValue, summary: String, _ operation: @escaping Operation) throws -> Int64 {
        let id = try database.createJob(op: op, summary: summary)
        AgentLog.jobSubmitted(id, summary: summary)
        // The opcode is the agent's own (OP_INSTANCE_CREATE…), never the client's text.
        let kind = op["OP_ID"]?.stringValue ?? "unknown"
        let task = Task { [self] in
            await execute(id, summary: summary, kind: kind, operation)
            _ = running.withLock { $0.removeValue(forKey: id) }
        }
        running.withLock { $0[id] = task }
        return id
    }

    private func execute(_ id: Int64, summary: String, kind: String, _ operation: Operation) async {
        if isCancelRequested(id) {
            try? database.setJobStatus(id, "canceled", result: .array([.null]))
            ended(id, summary, kind: kind, "canceled")
            return
        }
        try? database.setJobStatus(id, "running")
        AgentLog.job(id, summary, "running")
        let context = JobContext(id: id, database: database, runner: self)
        do {
            let result = try await operation(context)
            try database.setJobStatus(id, "success", result: .array([result]))
            ended(id, summary, kind: kind, "success")
        } catch is JobCanceled {
            context.log("Job canceled")
            try? database.setJobStatus(id, "canceled", result: .array([.null]))
            ended(id, summary, kind: kind, "canceled")
        } catch {
            context.log("Error: \(error)")
            try? database.setJobStatus(id, "error", result: .array([Self.encode(error)]))
            ended(id, summary, kind: kind, "error", detail: "\(error)")
        }
    }

    /// A job's end, in the log and in the metrics.
    private func ended(_ id: Int64, _ summary: String, kind: String, _ outcome: String, detail: String? = nil) {
        AgentLog.job(id, summary, outcome, detail: detail)
        metrics?.jobEnded(kind: kind, outcome: outcome)
    }

    func isCancelRequested(_ id: Int64) -> Bool { cancelRequests.withLock { $0.contains(id) } }

    /// `DELETE /2/jobs/ID`: `[success, message]`.
    public func cancel(_ id: Int64) throws -> JSONValue {
        guard let job = try database.job(id) else { return .array([.bool(false), .string("Job \(id) not found")]) }
        if job.isFinished { return .array([.bool(true), .string("Job \(id) has been already dead")]) }
        cancelRequests.withLock { _ = $0.insert(id) }
        try database.setJobStatus(id, "canceling")
        if let writer = AgentLog.writer { AgentLog.line("audit: \(writer) canceled job \(id)") }
        AgentLog.job(id, job.summary, "canceling")
        return .array([.bool(true), .string("Job \(id) will be canceled")])
    }

    /// Waits for every running job to end (for an orderly shutdown and for tests).
    public func drain() async {
        let tasks = running.withLock { Array($0.values) }
        for task in tasks { await task.value }
    }

    /// Ganeti's encoded error: `["OpPrereqError", ["message", "ecode"]]`.
    public static func encode(_ error: any Error) -> JSONValue {
        switch error {
        case let agent as AgentError:
            return .array([.string(agent.errorClass), .array([.string(agent.message), .string(agent.ecode)])])
        case let timedOut as HostCommand.TimedOut:
            return encode(AgentError.execution(timedOut.description))
        case let trust as TrustError:
            return .array([.string("OpPrereqError"), .array([.string(trust.message), .string(trust.ecode)])])
        default:
            return .array([.string("OpExecError"), .array([.string("\(error)")])])
        }
    }
}
