import Foundation
import GRDB
import MoveTrust

/// The agent's durable state in SQLite: instances, jobs and job logs. Every change is a
/// transaction, so a crash leaves either the old or the new state.
public final class AgentDatabase: Sendable {
    let queue: DatabaseQueue

    public init(path: String) throws {
        try SecureFile.prepareRestricted(path)
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        queue = try DatabaseQueue(path: path, configuration: configuration)
        try Self.migrator.migrate(queue)
    }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.create(table: "instance") { t in
                t.primaryKey("name", .text)
                t.column("uuid", .text).notNull()
                /// The InstanceSpec as canonical JSON.
                t.column("spec", .text).notNull()
                /// JSON list of disk paths (files or devices), by index.
                t.column("disks", .text).notNull()
                /// `up` or `down`: what the admin asked for.
                t.column("adminState", .text).notNull()
                /// `importing` while a remote import fills it; `ready` otherwise.
                t.column("lifecycle", .text).notNull()
                t.column("ctime", .double).notNull()
                t.column("mtime", .double).notNull()
                t.column("serial", .integer).notNull()
            }
            try db.create(table: "job") { t in
                t.autoIncrementedPrimaryKey("id")
                /// The opcode as JSON (OP_ID and parameters).
                t.column("op", .text).notNull()
                t.column("summary", .text).notNull()
                t.column("status", .text).notNull()
                t.column("opstatus", .text).notNull()
                t.column("received", .double).notNull()
                t.column("started", .double)
                t.column("ended", .double)
                /// The op result as JSON, or the encoded error.
                t.column("result", .text)
            }
            try db.create(table: "jobLog") { t in
                t.column("jobId", .integer).notNull().references("job", onDelete: .cascade)
                t.column("serial", .integer).notNull()
                t.column("sec", .integer).notNull()
                t.column("usec", .integer).notNull()
                t.column("type", .text).notNull()
                t.column("message", .text).notNull()
                t.primaryKey(["jobId", "serial"])
            }
        }
        return migrator
    }

}
