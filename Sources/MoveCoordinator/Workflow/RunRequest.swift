import Foundation
import MoveTrust

/// The JSON request of `gnt-move run` and the file of `gnt-move batch`: the fields of `move`,
/// named after its long options in snake_case.
///
///     {"source": {"host", "port", "ca_file", "username", "password_file"} or a cluster profile's
///      name, "destination": {…} or a name, "clusters": "/etc/gnt-move/clusters.json",
///      "moves": [{"instance", "dest_instance_name", "dest_primary_node", "dest_secondary_node",
///                 "dest_disk_template", "iallocator", "compress", "keep_source_instance", "start",
///                 "hvparams", "beparams", "osparams", "net", "storage_map", "bridge_map", …}],
///      "parallel": 1, "state_dir": "…", "preflight": false}
public struct RunRequest: Sendable {
    public var moves: [MoveRequest]
    public var parallel: Int
    public var stateDir: String?
    /// Check every move and show its plan instead of moving (as `move --preflight`).
    public var preflight = false

    public init(json: JSONValue) throws {
        guard case .object(let top) = json else { throw CoordinatorError.badRequest("the request must be a JSON object") }
        let known: Set<String> = ["source", "destination", "moves", "parallel", "state_dir", "clusters", "preflight"]
        if let unknown = top.keys.first(where: { !known.contains($0) }) {
            throw CoordinatorError.badRequest("unknown field '\(unknown)' in the request")
        }
        guard let given = top["source"], given.objectValue != nil || given.stringValue != nil else {
            throw CoordinatorError.badRequest("missing 'source' cluster")
        }
        // Clusters named by a string are cluster profiles (ClusterProfiles).
        var profiles: ClusterProfiles?
        func cluster(_ value: JSONValue, _ field: String) throws(CoordinatorError) -> JSONValue {
            guard let name = value.stringValue else { return value }
            if profiles == nil { profiles = try ClusterProfiles.load(path: top["clusters"]?.stringValue) }
            guard let endpoint = profiles?.endpoint(named: name) else {
                throw CoordinatorError.badRequest("'\(field)': '\(name.prefix(64))' is not a cluster profile in \(profiles?.path ?? ClusterProfiles.defaultPath)")
            }
            return (try? JSONValueEncoder().encode(endpoint)) ?? .null
        }
        let source = try cluster(given, "source")
        let destination = try top["destination"].map { value throws(CoordinatorError) in try cluster(value, "destination") } ?? source
        guard let list = top["moves"]?.arrayValue, !list.isEmpty else { throw CoordinatorError.badRequest("'moves' must be a non-empty array") }
        parallel = Int(top["parallel"]?.integerValue ?? 1)
        guard parallel >= 1 else { throw CoordinatorError.badRequest("'parallel' must be at least 1") }
        stateDir = top["state_dir"]?.stringValue
        if let value = top["preflight"], value != .null {
            guard let flag = value.boolValue else { throw CoordinatorError.badRequest("'preflight' is \(value.serialized.prefix(40)); expected true or false") }
            preflight = flag
        }
        moves = try list.enumerated().map { index, entry in
            guard case .object(var fields) = entry else { throw CoordinatorError.badRequest("moves[\(index)] must be an object") }
            if let unknown = fields.keys.first(where: { !MoveRequest.moveFields.contains($0) }) {
                throw CoordinatorError.badRequest("unknown field '\(unknown)' in moves[\(index)]")
            }
            guard fields["instance"]?.stringValue?.isEmpty == false else { throw CoordinatorError.badRequest("moves[\(index)] needs an 'instance'") }
            fields["source"] = source
            fields["destination"] = destination
            do {
                let move = try MoveRequest(json: .object(fields))
                // A malformed map is a malformed request, refused before any move starts.
                try ResourceMaps.check(move.storageMap, .storage, option: ResourceMaps.Kind.storage.field)
                try ResourceMaps.check(move.bridgeMap, .bridge, option: ResourceMaps.Kind.bridge.field)
                try ResourceMaps.checkAgreement(move.storageMap, diskTemplate: move.diskTemplate, names: ("'storage_map'", "'dest_disk_template'"))
                return move
            } catch let error as CoordinatorError {
                throw CoordinatorError.badRequest("moves[\(index)]: \(error.message)")
            }
        }
    }
}

extension Coordinator {
    /// Runs `requests` with at most `parallel` moves at a time; returns the final records in
    /// request order.
    public func runAll(_ requests: [MoveRequest], parallel: Int) async -> [MoveRecord] {
        await Self.each(requests, parallel: parallel) { await self.run($0) }
    }

    /// Checks `requests` (``preflight(_:)``) with at most `parallel` at a time; the reports in
    /// request order.
    public func preflightAll(_ requests: [MoveRequest], parallel: Int) async -> [PreflightReport] {
        await Self.each(requests, parallel: parallel) { await self.preflight($0) }
    }

    /// `body` of each request, at most `parallel` at once; the results in request order.
    static func each<Result: Sendable>(_ requests: [MoveRequest], parallel: Int,
                                       _ body: @escaping @Sendable (MoveRequest) async -> Result) async -> [Result] {
        await withTaskGroup(of: (Int, Result).self) { group in
            var results = [Result?](repeating: nil, count: requests.count)
            var next = 0
            func launch() {
                let index = next
                next += 1
                group.addTask { (index, await body(requests[index])) }
            }
            while next < min(max(1, parallel), requests.count) { launch() }
            for await (index, result) in group {
                results[index] = result
                if next < requests.count { launch() }
            }
            return results.compactMap { $0 }
        }
    }
}
