import Foundation
import MoveTrust

/// What `batch` did with one of its entries: one summary line.
public struct BatchOutcome: Sendable, Equatable {
    public let succeeded: Bool
    public let line: String
}

extension MoveRequest {
    /// What makes two requests the same move across batch runs: source cluster and instance,
    /// destination cluster and name. Computed from the stored form, so a stored record and a
    /// new request are compared the same way.
    static func identity(stored json: JSONValue) -> String {
        func cluster(_ key: String) -> String { "\(json[key]?["host"]?.stringValue ?? ""):\(json[key]?["port"]?.integerValue ?? 5080)" }
        let instance = json["instance"]?.stringValue ?? ""
        let target = json["dest_instance_name"]?.stringValue ?? instance
        return "\(cluster("source"))/\(instance)->\(cluster("destination"))/\(target)"
    }

    public var identity: String { Self.identity(stored: json) }
}

extension Coordinator {
    /// `batch`: at most `parallel` moves at a time; a move done in an earlier run is skipped, an
    /// interrupted one resumed, any other one run (with this coordinator's retry policy).
    /// Returns one outcome per entry, in completion order.
    public func runBatch(_ moves: [MoveRequest], parallel: Int) async throws -> [BatchOutcome] {
        let previous = try store.moves()
        return await withTaskGroup(of: BatchOutcome.self) { group in
            var outcomes: [BatchOutcome] = []
            var next = 0
            func launch() {
                let move = moves[next]
                next += 1
                let earlier = previous.last { MoveRequest.identity(stored: $0.request) == move.identity }
                group.addTask { await self.settle(move, earlier: earlier) }
            }
            while next < min(max(1, parallel), moves.count) { launch() }
            for await outcome in group {
                outcomes.append(outcome)
                if next < moves.count { launch() }
            }
            return outcomes
        }
    }

    /// One batch entry, given the latest record of the same move from earlier runs.
    func settle(_ move: MoveRequest, earlier: MoveRecord?) async -> BatchOutcome {
        let name = move.targetName == move.instance ? move.instance : "\(move.instance) as \(move.targetName)"
        if let earlier, earlier.state == .done { return BatchOutcome(succeeded: true, line: "\(name): done earlier (\(earlier.id)), skipped") }
        // One drive per entry (it retries as the policy says): resume an interrupted move, or
        // run the move anew when there is none or it cannot be resumed.
        var resumed: MoveRecord?
        if let earlier, !earlier.state.isFinal, earlier.state != .failed {
            resumed = try? await resume(earlier.id)
        }
        let record: MoveRecord
        if let resumed { record = resumed } else { record = await run(move) }
        if record.state == .done { return BatchOutcome(succeeded: true, line: "\(name): done (\(record.id))") }
        return BatchOutcome(succeeded: false, line: "\(name): FAILED (\((record.reason ?? .internal).rawValue)): \(record.error ?? "")")
    }
}
