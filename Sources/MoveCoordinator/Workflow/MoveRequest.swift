import BlockStream
import Foundation
import MoveTrust

/// One instance to move, with `move-instance`'s options (spec §7) and gnt-move's own.
public struct MoveRequest: Sendable, Equatable {
    public var source: ClusterEndpoint
    public var destination: ClusterEndpoint
    public var instance: String
    public var destinationName: String?
    public var primaryNode: String?
    public var secondaryNode: String?
    public var diskTemplate: String?
    public var iallocator: String?
    public var compress = CompressionMethod.none
    public var keepSourceInstance = false
    /// nil: start on the destination if it ran on the source.
    public var start: Bool?
    public var hvparams: [String: JSONValue] = [:]
    public var beparams: [String: JSONValue] = [:]
    public var osparams: [String: JSONValue] = [:]
    /// `--net idx:key=value` overrides, by NIC index.
    public var nicOverrides: [Int: [String: String?]] = [:]
    /// Bytes per second per disk stream (gnt-move agents only; a Ganeti source ignores it).
    public var bandwidthLimit: Int64?
    /// Seconds after which the move is given up and cleaned up.
    public var timeout: Double?
    /// `--opportunistic-tries`: creation attempts with opportunistic locking, retried after
    /// `temp_insufficient_resources`, before a normal one.
    public var opportunisticTries = 0
    public var opportunisticDelay: Double = 30

    public init(source: ClusterEndpoint, destination: ClusterEndpoint, instance: String) {
        self.source = source
        self.destination = destination
        self.instance = instance
    }

    public var targetName: String { destinationName ?? instance }

    /// The request with both clusters' credentials read from their files (a separate step from
    /// parsing: a file that cannot be read fails the move, with an event, not the request).
    public func loadingCredentials() throws -> MoveRequest {
        var loaded = self
        try loaded.source.loadCredentials(role: "source")
        try loaded.destination.loadCredentials(role: "destination")
        return loaded
    }

    /// What this request changes in the source's spec, declared to the destination beside the
    /// signed spec (`gnt_move_overrides`).
    public var overrides: SpecOverrides {
        var overrides = SpecOverrides()
        if let destinationName, destinationName != instance { overrides.name = destinationName }
        overrides.diskTemplate = diskTemplate
        overrides.beparams = beparams
        overrides.hvparams = hvparams
        overrides.osparams = osparams
        overrides.nics = nicOverrides
        return overrides
    }

    /// Names go into RAPI paths and the destination's configuration: they must be host names
    /// (Ganeti's rule), so a name like `../x` can never address another resource.
    public func validate() throws {
        do {
            try NameRules.check(instance, .hostname, field: "instance name")
            if let destinationName { try NameRules.check(destinationName, .hostname, field: "destination instance name") }
            if let primaryNode { try NameRules.check(primaryNode, .hostname, field: "destination primary node") }
            if let secondaryNode { try NameRules.check(secondaryNode, .hostname, field: "destination secondary node") }
            if let iallocator { try NameRules.check(iallocator, .osName, field: "iallocator") }
        } catch {
            throw CoordinatorError.badRequest("\(error)")
        }
    }

    /// The request as stored in the state database (passwords are not stored; they are read
    /// again from the password files on resume).
    var json: JSONValue {
        func endpoint(_ e: ClusterEndpoint) -> JSONValue {
            .object(["host": .string(e.host), "port": .int(e.port), "ca_file": .string(e.caFile),
                     "username": e.username.map(JSONValue.string) ?? .null, "password_file": e.passwordFile.map(JSONValue.string) ?? .null])
        }
        func optional(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        return .object([
            "source": endpoint(source), "destination": endpoint(destination), "instance": .string(instance),
            "dest_instance_name": optional(destinationName), "dest_primary_node": optional(primaryNode),
            "dest_secondary_node": optional(secondaryNode), "dest_disk_template": optional(diskTemplate),
            "iallocator": optional(iallocator), "compress": .string(compress.rawValue), "keep_source_instance": .bool(keepSourceInstance),
            "start": start.map(JSONValue.bool) ?? .null,
            "bwlimit": bandwidthLimit.map(JSONValue.int64) ?? .null,
            "timeout": timeout.map(JSONValue.double) ?? .null,
            "opportunistic_tries": .int(opportunisticTries), "opportunistic_delay": .double(opportunisticDelay),
            "hvparams": .object(hvparams), "beparams": .object(beparams), "osparams": .object(osparams),
            "net": .object(Dictionary(uniqueKeysWithValues: nicOverrides.map { (String($0.key), JSONValue.object($0.value.mapValues { $0.map(JSONValue.string) ?? .null })) })),
        ])
    }

    init(json: JSONValue) throws {
        func endpoint(_ value: JSONValue?) throws -> ClusterEndpoint {
            guard let value, let host = value["host"]?.stringValue, !host.isEmpty, let ca = value["ca_file"]?.stringValue else {
                throw CoordinatorError.badRequest("a cluster needs 'host' and 'ca_file'")
            }
            var e = ClusterEndpoint(host: host, port: Int(value["port"]?.integerValue ?? 5080), caFile: ca,
                                    username: value["username"]?.stringValue, password: nil)
            e.passwordFile = value["password_file"]?.stringValue
            return e
        }
        source = try endpoint(json["source"])
        destination = try endpoint(json["destination"])
        guard let instance = json["instance"]?.stringValue else { throw CoordinatorError.badRequest("missing instance") }
        self.instance = instance
        destinationName = json["dest_instance_name"]?.stringValue
        primaryNode = json["dest_primary_node"]?.stringValue
        secondaryNode = json["dest_secondary_node"]?.stringValue
        diskTemplate = json["dest_disk_template"]?.stringValue
        iallocator = json["iallocator"]?.stringValue
        compress = try CompressionMethod(requestField: json["compress"])
        keepSourceInstance = json["keep_source_instance"]?.boolValue ?? false
        start = json["start"]?.boolValue
        bandwidthLimit = json["bwlimit"]?.integerValue
        timeout = json["timeout"]?.numberValue
        opportunisticTries = Int(json["opportunistic_tries"]?.integerValue ?? 0)
        opportunisticDelay = json["opportunistic_delay"]?.numberValue ?? 30
        hvparams = json["hvparams"]?.objectValue ?? [:]
        beparams = json["beparams"]?.objectValue ?? [:]
        osparams = json["osparams"]?.objectValue ?? [:]
        nicOverrides = Self.nicOverrides(json["net"])
    }

    static func nicOverrides(_ value: JSONValue?) -> [Int: [String: String?]] {
        var overrides: [Int: [String: String?]] = [:]
        for (key, value) in value?.objectValue ?? [:] {
            guard let index = Int(key) else { continue }
            overrides[index] = (value.objectValue ?? [:]).mapValues { $0.stringValue }
        }
        return overrides
    }

    /// The overrides of a request as stored in the state database (for `status`).
    static func declaredOverrides(stored json: JSONValue) -> SpecOverrides {
        var overrides = SpecOverrides()
        if let name = json["dest_instance_name"]?.stringValue, name != json["instance"]?.stringValue { overrides.name = name }
        overrides.diskTemplate = json["dest_disk_template"]?.stringValue
        overrides.beparams = json["beparams"]?.objectValue ?? [:]
        overrides.hvparams = json["hvparams"]?.objectValue ?? [:]
        overrides.osparams = json["osparams"]?.objectValue ?? [:]
        overrides.nics = nicOverrides(json["net"])
        return overrides
    }
}

/// A coordinator failure, worded for an operator, with a machine-readable reason.
public struct CoordinatorError: Error, CustomStringConvertible, Sendable {
    public let reason: FailureReason
    public let message: String
    public var description: String { message }

    public init(reason: FailureReason, message: String) {
        self.reason = reason
        self.message = message
    }

    public static func badRequest(_ message: String) -> CoordinatorError { CoordinatorError(reason: .badRequest, message: message) }
}
