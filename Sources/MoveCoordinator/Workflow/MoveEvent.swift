import Foundation
import MoveTrust

/// The kinds of event a move reports, as named in its JSON lines (`event`) and in
/// `schemas/run-event.schema.json`.
public enum MoveEventKind: String, Sendable, CaseIterable {
    case moveStarted = "move-started"
    /// A step of the state machine begins (`step`, `state`).
    case step
    /// A disk's transfer progress (`disk`, `percent`, `message`…).
    case progress
    case diskDone = "disk-done"
    case moveDone = "move-done"
    /// The move failed, with a machine-readable `reason` (`FailureReason`).
    case moveFailed = "move-failed"
}

/// What a move reports as it goes (see `MoveEventKind`).
public struct MoveEvent: Sendable {
    public let event: MoveEventKind
    public let moveId: String
    public let instance: String
    public let fields: [String: JSONValue]

    public init(_ event: MoveEventKind, move: MoveRecord, _ fields: [String: JSONValue] = [:]) {
        self.event = event
        moveId = move.id
        instance = move.instance
        self.fields = fields
    }

    /// One JSON line.
    public var json: JSONValue {
        var object = fields
        object["event"] = .string(event.rawValue)
        object["move_id"] = .string(moveId)
        object["instance"] = .string(instance)
        object["time"] = .string(UnixTime.iso8601(UnixTime.now()))
        return .object(object)
    }
}
