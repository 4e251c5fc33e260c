import Foundation
import MoveTrust

/// What a move reports as it goes: `move-started`, `step`, `progress`, `disk-done`,
/// `move-done`, `move-failed` (with a machine-readable `reason`).
public struct MoveEvent: Sendable {
    public let event: String
    public let moveId: String
    public let instance: String
    public let fields: [String: JSONValue]

    public init(_ event: String, move: MoveRecord, _ fields: [String: JSONValue] = [:]) {
        self.event = event
        moveId = move.id
        instance = move.instance
        self.fields = fields
    }

    /// One JSON line.
    public var json: JSONValue {
        var object = fields
        object["event"] = .string(event)
        object["move_id"] = .string(moveId)
        object["instance"] = .string(instance)
        object["time"] = .string(UnixTime.iso8601(UnixTime.now()))
        return .object(object)
    }
}
