import Foundation
import GRDB
import MoveTrust

/// One instance this agent holds.
public struct InstanceRecord: Sendable, Equatable {
    public var name: String
    public var uuid: String
    public var spec: InstanceSpec
    public var diskPaths: [String]
    public var adminState: String
    public var lifecycle: String
    public var ctime: Double
    public var mtime: Double
    public var serial: Int

    public init(spec: InstanceSpec, diskPaths: [String], adminState: String, lifecycle: String = "ready") {
        name = spec.name
        uuid = UUID().uuidString.lowercased()
        self.spec = spec
        self.diskPaths = diskPaths
        self.adminState = adminState
        self.lifecycle = lifecycle
        ctime = Date().timeIntervalSince1970
        mtime = ctime
        serial = 1
    }

    init(row: Row) throws {
        name = row["name"]
        uuid = row["uuid"]
        let specText: String = row["spec"]
        spec = try InstanceSpec(json: try JSONValue(parsing: specText))
        let disksText: String = row["disks"]
        diskPaths = (try JSONValue(parsing: disksText).arrayValue ?? []).compactMap(\.stringValue)
        adminState = row["adminState"]
        lifecycle = row["lifecycle"]
        ctime = row["ctime"]
        mtime = row["mtime"]
        serial = row["serial"]
    }

    var arguments: StatementArguments {
        [name, uuid, spec.json.serialized, JSONValue.array(diskPaths.map(JSONValue.string)).serialized,
         adminState, lifecycle, ctime, mtime, serial]
    }
}

extension AgentDatabase {
    public func instances() throws -> [InstanceRecord] {
        try queue.read { db in try Row.fetchAll(db, sql: "SELECT * FROM instance ORDER BY name").map(InstanceRecord.init(row:)) }
    }

    public func instance(_ name: String) throws -> InstanceRecord? {
        try queue.read { db in try Row.fetchOne(db, sql: "SELECT * FROM instance WHERE name = ?", arguments: [name]).map(InstanceRecord.init(row:)) }
    }

    /// Adds an instance; fails with `already_exists` if the name is taken.
    public func insert(_ record: InstanceRecord) throws {
        try queue.write { db in
            if try Row.fetchOne(db, sql: "SELECT name FROM instance WHERE name = ?", arguments: [record.name]) != nil {
                throw AgentError.exists("The instance '\(record.name)' already exists")
            }
            try db.execute(sql: "INSERT INTO instance (name, uuid, spec, disks, adminState, lifecycle, ctime, mtime, serial) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           arguments: record.arguments)
        }
    }

    public func update(_ name: String, _ change: (inout InstanceRecord) -> Void) throws {
        try queue.write { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT * FROM instance WHERE name = ?", arguments: [name]) else {
                throw AgentError.unknown("Instance '\(name)' not known")
            }
            var record = try InstanceRecord(row: row)
            change(&record)
            record.mtime = Date().timeIntervalSince1970
            record.serial += 1
            try db.execute(sql: "UPDATE instance SET spec = ?, disks = ?, adminState = ?, lifecycle = ?, mtime = ?, serial = ? WHERE name = ?",
                           arguments: [record.spec.json.serialized, JSONValue.array(record.diskPaths.map(JSONValue.string)).serialized,
                                       record.adminState, record.lifecycle, record.mtime, record.serial, name])
        }
    }

    public func deleteInstance(_ name: String) throws {
        try queue.write { db in try db.execute(sql: "DELETE FROM instance WHERE name = ?", arguments: [name]) }
    }
}

/// Where an instance is in its life on this agent (`lifecycle` in the database).
enum InstanceLifecycle: String, CaseIterable {
    /// Recorded, its disks being made.
    case creating
    /// Receiving its disks; removed if the import fails or the agent restarts.
    case importing
    /// Receiving its disks for a move that can continue (`gnt_move_continuable`): kept as
    /// `import-interrupted` if the import fails or the agent restarts.
    case importingContinuable = "importing-continuable"
    /// A continuable import that stopped: its disks keep what they received until the move
    /// continues into them (`gnt_move_continue`), removes it, or the sweep does.
    case importInterrupted = "import-interrupted"
    case ready
}
