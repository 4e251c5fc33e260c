import Foundation
import MoveTrust

/// Jobs as RAPI shows them.
enum JobViews {
    static func timestamp(_ seconds: Double?) -> JSONValue {
        guard let seconds else { return .null }
        return .array([.int64(Int64(seconds)), .int64(Int64((seconds - seconds.rounded(.down)) * 1_000_000))])
    }

    /// `GET /2/jobs/ID`.
    static func status(_ job: JobRecord) -> JSONValue {
        .object([
            "id": .int64(job.id),
            "ops": .array([job.op]),
            "status": .string(job.status),
            "summary": .array([.string(job.summary)]),
            "opstatus": .array([.string(job.opstatus)]),
            "received_ts": timestamp(job.received),
            "start_ts": timestamp(job.started),
            "end_ts": timestamp(job.ended),
            "oplog": .array([.array(job.log.map(\.json))]),
            "opresult": job.result ?? .array([.null]),
        ])
    }

    /// `GET /2/jobs/ID/wait`: blocks up to 10 s for a change of status or new log entries
    /// (serial above `previous_log_serial`), as luxid does; a finished job answers at once.
    static func wait(service: ClusterAgentService, id: Int64, body: JSONValue?) async throws -> JSONValue {
        let fields = body?["fields"]?.arrayValue ?? [.string("status")]
        let previousInfo = body?["previous_job_info"]
        var previousSerial: Int64 = -1
        if let serial = body?["previous_log_serial"], serial != .null {
            guard let value = serial.integerValue else {
                throw RAPIHTTPError(status: .badRequest, message: "The 'previous_log_serial' parameter should be a number")
            }
            previousSerial = value
        }
        let since = previousSerial
        @Sendable func answer(_ job: JobRecord, atDeadline: Bool) -> JSONValue? {
            let info = JSONValue.array(fields.map { field in
                switch field.stringValue {
                case "status": return .string(job.status)
                case "opstatus": return .array([.string(job.opstatus)])
                case "opresult": return job.result ?? .null
                default: return .null
                }
            })
            let entries = job.log.filter { $0.serial > since }.map(\.json)
            guard !entries.isEmpty || info != previousInfo || job.isFinished || atDeadline else { return nil }
            return .object(["job_info": info, "log_entries": .array(entries)])
        }
        let notFound = RAPIHTTPError(status: .notFound, message: "Job \(id) not found")
        // The first change worth answering, from SQLite's change notifications, or the deadline.
        let changes = service.database.jobChanges(id)
        let changed: JSONValue? = try await withThrowingTaskGroup(of: JSONValue?.self) { group in
            group.addTask {
                for try await job in changes {
                    guard let job else { throw notFound }
                    if let reply = answer(job, atDeadline: false) { return reply }
                }
                return nil
            }
            group.addTask {
                try await Task.sleep(nanoseconds: 10_000_000_000)
                return nil
            }
            let first = try await group.next() ?? nil
            group.cancelAll()
            return first
        }
        if let changed { return changed }
        guard let job = try service.database.job(id), let reply = answer(job, atDeadline: true) else { throw notFound }
        return reply
    }
}
