import Foundation
import GRDB
import MoveTrust

/// One move as recorded: its request, state and the facts learnt so far (job ids, the signed
/// material relayed between the clusters).
public struct MoveRecord: Sendable, Equatable {
    public let id: String
    public let instance: String
    public var request: JSONValue
    public var state: MoveState
    public var facts: MoveFacts
    public var error: String?
    public var reason: FailureReason?
    public let created: Double
    public var updated: Double

    public var json: JSONValue {
        let base: [String: JSONValue] = [
            "id": .string(id), "instance": .string(instance), "state": .string(state.rawValue),
            "destination_instance": request["dest_instance_name"].flatMap { $0 == .null ? nil : $0 } ?? .string(instance),
            "created": .string(UnixTime.iso8601(Int64(created))), "updated": .string(UnixTime.iso8601(Int64(updated))),
            "error": error.map(JSONValue.string) ?? .null, "reason": reason.map { .string($0.rawValue) } ?? .null,
            "jobs": .object(facts.jobs.mapValues(JSONValue.int64)),
            "overrides": .array(MoveRequest.declaredOverrides(stored: request, spec: facts.spec).descriptions.map(JSONValue.string)),
            "transfer_resumes": .array((facts.transferResumes ?? []).map { .object(["disk": .int($0.disk), "offset": .int64($0.offset)]) }),
        ]
        return .object(base.merging(transferFacts) { $1 })
    }

    /// What `status` shows of warm moves and continued imports.
    private var transferFacts: [String: JSONValue] {
        let warm: JSONValue = request["warm"] ?? .bool(false)
        let precopy: [JSONValue] = (facts.precopyChanged ?? []).map(JSONValue.int64)
        let downtime: JSONValue = facts.downtimeSeconds.map(JSONValue.double) ?? .null
        // A continued import: the bytes its disks kept, not sent again.
        let kept: JSONValue = facts.keptBytes.map(JSONValue.int64) ?? .null
        return ["warm": warm, "precopy_changed": .array(precopy), "downtime_seconds": downtime, "kept_bytes": kept]
    }
}

/// Moves in SQLite under the state directory. Every transition is written (and synced) before
/// the remote call that depends on it, so a restarted coordinator knows what may have happened.
public final class MoveStore: Sendable {
    let queue: DatabaseQueue
    public let directory: String

    public init(directory: String) throws {
        self.directory = directory
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try SecureFile.prepareRestricted(directory + "/moves.sqlite")
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: directory + "/moves.sqlite", configuration: configuration)
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "move") { t in
                t.primaryKey("id", .text)
                t.column("instance", .text).notNull()
                t.column("request", .text).notNull()
                t.column("state", .text).notNull()
                t.column("facts", .text).notNull()
                t.column("error", .text)
                t.column("reason", .text)
                t.column("created", .double).notNull()
                t.column("updated", .double).notNull()
            }
            try db.create(table: "transition") { t in
                t.autoIncrementedPrimaryKey("seq")
                t.column("moveId", .text).notNull().references("move", onDelete: .cascade)
                t.column("state", .text).notNull()
                t.column("at", .double).notNull()
                t.column("detail", .text).notNull()
            }
        }
        try migrator.migrate(queue)
    }

    public func create(_ request: MoveRequest) throws -> MoveRecord {
        let now = Date().timeIntervalSince1970
        let record = MoveRecord(id: "mv-" + String(UUID().uuidString.prefix(8)).lowercased(), instance: request.instance,
                                request: request.json, state: .planned, facts: MoveFacts(), error: nil, reason: nil, created: now, updated: now)
        try queue.write { db in
            try db.execute(sql: "INSERT INTO move (id, instance, request, state, facts, created, updated) VALUES (?, ?, ?, ?, '{}', ?, ?)",
                           arguments: [record.id, record.instance, record.request.serialized, record.state.rawValue, now, now])
            try db.execute(sql: "INSERT INTO transition (moveId, state, at, detail) VALUES (?, 'planned', ?, 'move recorded')", arguments: [record.id, now])
        }
        return record
    }

    /// Records what a step learnt (`learn`) and, when given, a new state; refuses a transition
    /// the state machine does not allow (`MoveState.successors`).
    public func record(_ id: String, state: MoveState? = nil, detail: String, error: String? = nil, reason: FailureReason? = nil,
                       learn: (inout MoveFacts) -> Void = { _ in }) throws -> MoveRecord {
        try queue.write { db in
            guard var record = try Self.fetch(db, id) else { throw CoordinatorError(reason: .unknownMove, message: "no move \(id)") }
            if let state {
                guard record.state.canMove(to: state) else {
                    throw CoordinatorError(reason: .state, message: "move \(id) cannot go from \(record.state.rawValue) to \(state.rawValue)")
                }
                record.state = state
            }
            learn(&record.facts)
            if let error { record.error = error }
            if let reason { record.reason = reason }
            record.updated = Date().timeIntervalSince1970
            try db.execute(sql: "UPDATE move SET state = ?, facts = ?, error = ?, reason = ?, updated = ? WHERE id = ?",
                           arguments: [record.state.rawValue, record.facts.json.serialized, record.error, record.reason?.rawValue, record.updated, id])
            try db.execute(sql: "INSERT INTO transition (moveId, state, at, detail) VALUES (?, ?, ?, ?)",
                           arguments: [id, record.state.rawValue, record.updated, detail])
            return record
        }
    }

    /// Starts a cleaned move again from `planned`, keeping only what identifies the source's
    /// state before the move (whether it was running).
    public func restart(_ id: String, detail: String) throws -> MoveRecord {
        try queue.write { db in
            guard var record = try Self.fetch(db, id) else { throw CoordinatorError(reason: .unknownMove, message: "no move \(id)") }
            guard record.state.canMove(to: .planned) else {
                throw CoordinatorError(reason: .state, message: "move \(id) is \(record.state.rawValue); only a cleaned move starts again")
            }
            record.facts = record.facts.forRetry()
            record.state = .planned
            record.error = nil
            record.reason = nil
            record.updated = Date().timeIntervalSince1970
            try db.execute(sql: "UPDATE move SET state = ?, facts = ?, error = NULL, reason = NULL, updated = ? WHERE id = ?",
                           arguments: [record.state.rawValue, record.facts.json.serialized, record.updated, id])
            try db.execute(sql: "INSERT INTO transition (moveId, state, at, detail) VALUES (?, ?, ?, ?)",
                           arguments: [id, record.state.rawValue, record.updated, detail])
            return record
        }
    }

    public func move(_ id: String) throws -> MoveRecord? { try queue.read { db in try Self.fetch(db, id) } }

    public func moves() throws -> [MoveRecord] {
        try queue.read { db in try Row.fetchAll(db, sql: "SELECT * FROM move ORDER BY created").map(Self.decode) }
    }

    public func transitions(_ id: String) throws -> [(state: String, at: Double, detail: String)] {
        try queue.read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM transition WHERE moveId = ? ORDER BY seq", arguments: [id]).map { ($0["state"], $0["at"], $0["detail"]) }
        }
    }

    /// Forgets finished moves last updated before `before`; returns how many.
    public func purge(before: Double) throws -> Int {
        try queue.write { db in
            try db.execute(sql: "DELETE FROM move WHERE state IN ('done', 'cleaned') AND updated < ?", arguments: [before])
            return db.changesCount
        }
    }

    static func fetch(_ db: Database, _ id: String) throws -> MoveRecord? {
        try Row.fetchOne(db, sql: "SELECT * FROM move WHERE id = ?", arguments: [id]).map(decode)
    }

    /// A stored move; a row this version cannot read is an error naming the move and the field,
    /// never skipped (a move hidden from `status` and `cleanup` would leave what it created).
    static func decode(_ row: Row) throws -> MoveRecord {
        let id: String = row["id"]
        let requestText: String = row["request"]
        let factsText: String = row["facts"]
        let stateText: String = row["state"]
        let reasonText: String? = row["reason"]
        func unreadable(_ what: String) -> CoordinatorError {
            CoordinatorError(reason: .internal, message: "move \(id) in the state database is unreadable: \(what)")
        }
        guard let state = MoveState(rawValue: stateText) else { throw unreadable("unknown state '\(stateText)'") }
        let request: JSONValue
        let facts: MoveFacts
        do {
            request = try JSONValue(parsing: requestText)
            facts = try MoveFacts(json: JSONValue(parsing: factsText))
        } catch {
            throw unreadable("\(error)")
        }
        return MoveRecord(id: id, instance: row["instance"], request: request, state: state, facts: facts,
                          error: row["error"], reason: reasonText.map { FailureReason(rawValue: $0) ?? .internal },
                          created: row["created"], updated: row["updated"])
    }
}
