import Foundation
import GRDB
import MoveTrust

/// A job as RAPI shows it (`GET /2/jobs/ID`).
public struct JobRecord: Sendable, Equatable {
    public var id: Int64
    public var op: JSONValue
    public var summary: String
    public var status: String
    public var opstatus: String
    public var received: Double
    public var started: Double?
    public var ended: Double?
    public var result: JSONValue?
    public var log: [JobLogEntry]

    /// Ganeti's finalized states.
    public var isFinished: Bool { ["success", "error", "canceled"].contains(status) }
}

/// `[serial, [sec, usec], type, message]`.
public struct JobLogEntry: Sendable, Equatable {
    public var serial: Int64
    public var sec: Int64
    public var usec: Int64
    public var type: String
    public var message: JSONValue

    public var json: JSONValue {
        .array([.int64(serial), .array([.int64(sec), .int64(usec)]), .string(type), message])
    }
}

extension AgentDatabase {
    /// Records a new job, queued.
    public func createJob(op: JSONValue, summary: String) throws -> Int64 {
        try queue.write { db in
            try db.execute(sql: "INSERT INTO job (op, summary, status, opstatus, received) VALUES (?, ?, 'queued', 'queued', ?)",
                           arguments: [op.serialized, summary, Date().timeIntervalSince1970])
            return db.lastInsertedRowID
        }
    }

    public func job(_ id: Int64) throws -> JobRecord? {
        try queue.read { db in try Self.fetchJob(db, id) }
    }

    /// The job each time it changes (status, result or log), starting with its state now; nil
    /// when there is no such job. Driven by SQLite's change notifications, not by polling.
    func jobChanges(_ id: Int64) -> AsyncValueObservation<JobRecord?> {
        ValueObservation.tracking { db in try Self.fetchJob(db, id) }.removeDuplicates().values(in: queue)
    }

    static func fetchJob(_ db: Database, _ id: Int64) throws -> JobRecord? {
        guard let row = try Row.fetchOne(db, sql: "SELECT * FROM job WHERE id = ?", arguments: [id]) else { return nil }
        let logRows = try Row.fetchAll(db, sql: "SELECT * FROM jobLog WHERE jobId = ? ORDER BY serial", arguments: [id])
        let opText: String = row["op"]
        let resultText: String? = row["result"]
        return JobRecord(
            id: row["id"], op: (try? JSONValue(parsing: opText)) ?? .null, summary: row["summary"],
            status: row["status"], opstatus: row["opstatus"], received: row["received"], started: row["started"],
            ended: row["ended"], result: resultText.flatMap { try? JSONValue(parsing: $0) },
            log: logRows.map { log in
                let message: String = log["message"]
                return JobLogEntry(serial: log["serial"], sec: log["sec"], usec: log["usec"], type: log["type"],
                                   message: (try? JSONValue(parsing: message)) ?? .string(message))
            })
    }

    public func jobIds() throws -> [Int64] {
        try queue.read { db in try Int64.fetchAll(db, sql: "SELECT id FROM job ORDER BY id") }
    }

    public func setJobStatus(_ id: Int64, _ status: String, result: JSONValue? = nil) throws {
        let now = Date().timeIntervalSince1970
        try queue.write { db in
            switch status {
            case "running":
                try db.execute(sql: "UPDATE job SET status = ?, opstatus = ?, started = ? WHERE id = ?", arguments: [status, status, now, id])
            case "success", "error", "canceled":
                try db.execute(sql: "UPDATE job SET status = ?, opstatus = ?, ended = ?, result = ? WHERE id = ?",
                               arguments: [status, status, now, result?.serialized, id])
            default:
                try db.execute(sql: "UPDATE job SET status = ?, opstatus = ? WHERE id = ?", arguments: [status, status, id])
            }
        }
    }

    /// Appends a log entry with the next serial.
    public func appendLog(_ id: Int64, type: String, message: JSONValue) throws {
        let now = Date().timeIntervalSince1970
        try queue.write { db in
            let serial = (try Int64.fetchOne(db, sql: "SELECT MAX(serial) FROM jobLog WHERE jobId = ?", arguments: [id]) ?? 0) + 1
            try db.execute(sql: "INSERT INTO jobLog (jobId, serial, sec, usec, type, message) VALUES (?, ?, ?, ?, ?, ?)",
                           arguments: [id, serial, Int64(now), Int64((now - now.rounded(.down)) * 1_000_000), type, message.serialized])
        }
    }

    /// After a restart: a job that was queued or running when the agent stopped is failed with
    /// a reason, never silently lost. Returns the ids it failed.
    public func failInterruptedJobs() throws -> [Int64] {
        let interrupted = try queue.read { db in
            try Int64.fetchAll(db, sql: "SELECT id FROM job WHERE status IN ('queued', 'waiting', 'running', 'canceling')")
        }
        for id in interrupted {
            let error = JobRunner.encode(AgentError.execution("The agent stopped while this job was running; it was not completed"))
            try appendLog(id, type: "message", message: .string("Job interrupted by an agent restart"))
            try setJobStatus(id, "error", result: .array([error]))
        }
        return interrupted
    }
}
