import Foundation
import GRDB
import MoveTrust

/// The states of a move (architecture §"A move, as states").
public enum MoveState: String, Sendable, CaseIterable {
    case planned
    case sourcePrepared = "source-prepared"
    case destinationCreated = "destination-created"
    case destinationListening = "destination-listening"
    case exporting
    case disksDone = "disks-done"
    case finalized
    case sourceRemoved = "source-removed"
    case done
    case failed
    case cleaned

    public var isFinal: Bool { self == .done || self == .cleaned }
}

/// One move as recorded: its request, state and the facts learnt so far (job ids, the signed
/// material relayed between the clusters).
public struct MoveRecord: Sendable, Equatable {
    public let id: String
    public let instance: String
    public var request: JSONValue
    public var state: MoveState
    public var facts: [String: JSONValue]
    public var error: String?
    public var reason: String?
    public let created: Double
    public var updated: Double

    public var json: JSONValue {
        .object([
            "id": .string(id), "instance": .string(instance), "state": .string(state.rawValue),
            "destination_instance": request["dest_instance_name"].flatMap { $0 == .null ? nil : $0 } ?? .string(instance),
            "created": .string(UnixTime.iso8601(Int64(created))), "updated": .string(UnixTime.iso8601(Int64(updated))),
            "error": error.map(JSONValue.string) ?? .null, "reason": reason.map(JSONValue.string) ?? .null,
            "jobs": .object(facts.filter { $0.key.hasSuffix("_job") }),
            "overrides": .array(MoveRequest.declaredOverrides(stored: request).descriptions.map(JSONValue.string)),
        ])
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
                                request: request.json, state: .planned, facts: [:], error: nil, reason: nil, created: now, updated: now)
        try queue.write { db in
            try db.execute(sql: "INSERT INTO move (id, instance, request, state, facts, created, updated) VALUES (?, ?, ?, ?, '{}', ?, ?)",
                           arguments: [record.id, record.instance, record.request.serialized, record.state.rawValue, now, now])
            try db.execute(sql: "INSERT INTO transition (moveId, state, at, detail) VALUES (?, 'planned', ?, 'move recorded')", arguments: [record.id, now])
        }
        return record
    }

    /// Records new facts and, when given, a new state.
    public func record(_ id: String, state: MoveState? = nil, facts: [String: JSONValue] = [:], detail: String,
                       error: String? = nil, reason: String? = nil) throws -> MoveRecord {
        try queue.write { db in
            guard var record = try Self.fetch(db, id) else { throw CoordinatorError(reason: "unknown-move", message: "no move \(id)") }
            for (key, value) in facts { record.facts[key] = value }
            if let state { record.state = state }
            if let error { record.error = error }
            if let reason { record.reason = reason }
            record.updated = Date().timeIntervalSince1970
            try db.execute(sql: "UPDATE move SET state = ?, facts = ?, error = ?, reason = ?, updated = ? WHERE id = ?",
                           arguments: [record.state.rawValue, JSONValue.object(record.facts).serialized, record.error, record.reason, record.updated, id])
            try db.execute(sql: "INSERT INTO transition (moveId, state, at, detail) VALUES (?, ?, ?, ?)",
                           arguments: [id, record.state.rawValue, record.updated, detail])
            return record
        }
    }

    /// Starts a cleaned move again from `planned`, keeping only what identifies the source's
    /// state before the move (whether it was running).
    public func restart(_ id: String, detail: String) throws -> MoveRecord {
        try queue.write { db in
            guard var record = try Self.fetch(db, id) else { throw CoordinatorError(reason: "unknown-move", message: "no move \(id)") }
            let attempts = Int(record.facts["attempts"]?.integerValue ?? 1) + 1
            record.facts = ["attempts": .int(attempts), "source_was_running": record.facts["source_was_running"] ?? .null]
            record.state = .planned
            record.error = nil
            record.reason = nil
            record.updated = Date().timeIntervalSince1970
            try db.execute(sql: "UPDATE move SET state = ?, facts = ?, error = NULL, reason = NULL, updated = ? WHERE id = ?",
                           arguments: [record.state.rawValue, JSONValue.object(record.facts).serialized, record.updated, id])
            try db.execute(sql: "INSERT INTO transition (moveId, state, at, detail) VALUES (?, ?, ?, ?)",
                           arguments: [id, record.state.rawValue, record.updated, detail])
            return record
        }
    }

    public func move(_ id: String) throws -> MoveRecord? { try queue.read { db in try Self.fetch(db, id) } }

    public func moves() throws -> [MoveRecord] {
        try queue.read { db in try Row.fetchAll(db, sql: "SELECT * FROM move ORDER BY created").compactMap(Self.decode) }
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
        try Row.fetchOne(db, sql: "SELECT * FROM move WHERE id = ?", arguments: [id]).flatMap(decode)
    }

    static func decode(_ row: Row) -> MoveRecord? {
        let requestText: String = row["request"]
        let factsText: String = row["facts"]
        let stateText: String = row["state"]
        guard let state = MoveState(rawValue: stateText) else { return nil }
        return MoveRecord(id: row["id"], instance: row["instance"], request: (try? JSONValue(parsing: requestText)) ?? .null,
                          state: state, facts: (try? JSONValue(parsing: factsText))?.objectValue ?? [:],
                          error: row["error"], reason: row["reason"], created: row["created"], updated: row["updated"])
    }
}
