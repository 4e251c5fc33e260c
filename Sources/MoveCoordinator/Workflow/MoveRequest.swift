import BlockStream
import Foundation
import MoveTrust

/// One instance to move, with `move-instance`'s options (docs/protocol.md §7) and gnt-move's own.
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
    /// A warm move: copy the disks while the source runs, then stop it and send only what
    /// changed (gnt-move agents with `gnt-move-warm-v1` on both sides).
    public var warm = false
    /// Pre-copy passes at most; a pass after the second runs only while the difference shrinks.
    public var warmPasses = 1
    public static let warmPassLimit = 1...10
    /// `--storage-map`: volume group OLD → NEW, and `template:OLD` → NEW disk template (`ResourceMaps`).
    public var storageMap: [String: String] = [:]
    /// `--bridge-map`: a NIC whose link is OLD gets link NEW on the destination.
    public var bridgeMap: [String: String] = [:]

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
    /// signed spec (`gnt_move_overrides`): the options, and what the storage and bridge maps
    /// change in `spec` (the source's instance data; nil: the options alone).
    public func overrides(spec: JSONValue? = nil) -> SpecOverrides {
        var overrides = SpecOverrides()
        if let destinationName, destinationName != instance { overrides.name = destinationName }
        overrides.diskTemplate = diskTemplate
        if diskTemplate == nil, let spec, let template = destinationTemplate(spec: spec), template != spec["disk_template"]?.stringValue {
            overrides.diskTemplate = template
        }
        overrides.beparams = beparams
        overrides.hvparams = hvparams
        overrides.osparams = osparams
        overrides.nics = nicOverrides
        if let spec {
            for (index, link) in mappedLinks(spec: spec) where overrides.nics[index]?["link"] == nil {
                overrides.nics[index, default: [:]].updateValue(link, forKey: "link")
            }
        }
        return overrides
    }

    /// The destination's disk template: `--dest-disk-template`, else the source's mapped by
    /// `--storage-map template:OLD=NEW`, else the source's.
    public func destinationTemplate(spec: JSONValue) -> String? {
        if let diskTemplate { return diskTemplate }
        let source = spec["disk_template"]?.stringValue
        return source.flatMap { ResourceMaps.templates(storageMap)[$0] } ?? source
    }

    /// The volume group `--storage-map` sends for each disk of `spec` (nil: not mapped, the
    /// destination's default).
    public func mappedVolumeGroups(spec: JSONValue) -> [String?] {
        let groups = ResourceMaps.volumeGroups(storageMap)
        let template = spec["disk_template"]?.stringValue
        return (spec["disks"]?.arrayValue ?? []).map { disk in
            ResourceMaps.sourceVolumeGroup(disk, template: template).flatMap { groups[$0] }
        }
    }

    /// NIC index → the link `--bridge-map` gives it (NICs whose link is not mapped are absent).
    public func mappedLinks(spec: JSONValue) -> [Int: String] {
        var result: [Int: String] = [:]
        for (index, nic) in (spec["nics"]?.arrayValue ?? []).enumerated() {
            if let link = ResourceMaps.link(ofNIC: nic), let mapped = bridgeMap[link] { result[index] = mapped }
        }
        return result
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
            try ResourceMaps.check(storageMap, .storage)
            try ResourceMaps.check(bridgeMap, .bridge)
            try ResourceMaps.checkAgreement(storageMap, diskTemplate: diskTemplate)
            guard Self.warmPassLimit.contains(warmPasses) else {
                throw CoordinatorError.badRequest("warm passes: \(warmPasses) is not from \(Self.warmPassLimit.lowerBound) to \(Self.warmPassLimit.upperBound)")
            }
        } catch let error as CoordinatorError {
            throw error
        } catch {
            throw CoordinatorError.badRequest("\(error)")
        }
    }

    /// The request as stored in the state database (passwords are not stored; they are read
    /// again from the password files on resume).
    var json: JSONValue {
        // Every field is a string, a bool, an integer, a finite number (`validate`) or a JSON
        // tree: encoding cannot fail.
        (try? JSONValueEncoder().encode(self)) ?? .null
    }

    /// A request read from JSON (`run`, `batch`, the state database), any problem named by its
    /// field and reported as a bad request.
    init(json: JSONValue) throws(CoordinatorError) {
        do {
            self = try JSONValueDecoder().decode(MoveRequest.self, from: json)
        } catch {
            throw CoordinatorError.badRequest(error.description)
        }
    }

    /// The overrides of a request as stored in the state database (for `status`).
    static func declaredOverrides(stored json: JSONValue, spec: JSONValue?) -> SpecOverrides {
        (try? MoveRequest(json: json))?.overrides(spec: spec) ?? SpecOverrides()
    }
}

/// The request's JSON form: the fields of `move`, named after its long options in snake_case
/// (`schemas/run-request.schema.json`); absent and null mean the option's default.
extension MoveRequest: Codable {
    enum CodingKeys: String, CodingKey, CaseIterable {
        case source, destination, instance, iallocator, compress, start, hvparams, beparams, osparams, timeout
        case destinationName = "dest_instance_name", primaryNode = "dest_primary_node", secondaryNode = "dest_secondary_node"
        case diskTemplate = "dest_disk_template", keepSourceInstance = "keep_source_instance", nicOverrides = "net"
        case bandwidthLimit = "bwlimit", opportunisticTries = "opportunistic_tries", opportunisticDelay = "opportunistic_delay"
        case warm, warmPasses = "warm_passes"
        case storageMap = "storage_map", bridgeMap = "bridge_map"
    }

    /// The fields of one move of a `run` request (the clusters are given once, beside them).
    static let moveFields = Set(CodingKeys.allCases.map(\.rawValue)).subtracting([CodingKeys.source.rawValue, CodingKeys.destination.rawValue])

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(source: try c.decode(ClusterEndpoint.self, forKey: .source),
                  destination: try c.decode(ClusterEndpoint.self, forKey: .destination),
                  instance: try c.decode(String.self, forKey: .instance))
        destinationName = try c.decodeIfPresent(String.self, forKey: .destinationName)
        primaryNode = try c.decodeIfPresent(String.self, forKey: .primaryNode)
        secondaryNode = try c.decodeIfPresent(String.self, forKey: .secondaryNode)
        diskTemplate = try c.decodeIfPresent(String.self, forKey: .diskTemplate)
        iallocator = try c.decodeIfPresent(String.self, forKey: .iallocator)
        compress = try CompressionMethod(requestField: c.decodeIfPresent(JSONValue.self, forKey: .compress))
        keepSourceInstance = try c.decodeIfPresent(Bool.self, forKey: .keepSourceInstance) ?? false
        start = try c.decodeIfPresent(Bool.self, forKey: .start)
        hvparams = try c.decodeIfPresent([String: JSONValue].self, forKey: .hvparams) ?? [:]
        beparams = try c.decodeIfPresent([String: JSONValue].self, forKey: .beparams) ?? [:]
        osparams = try c.decodeIfPresent([String: JSONValue].self, forKey: .osparams) ?? [:]
        nicOverrides = try c.decodeIfPresent([Int: [String: String?]].self, forKey: .nicOverrides) ?? [:]
        bandwidthLimit = try c.decodeIfPresent(Int64.self, forKey: .bandwidthLimit)
        timeout = try c.decodeIfPresent(Double.self, forKey: .timeout)
        opportunisticTries = try c.decodeIfPresent(Int.self, forKey: .opportunisticTries) ?? 0
        opportunisticDelay = try c.decodeIfPresent(Double.self, forKey: .opportunisticDelay) ?? 30
        warm = try c.decodeIfPresent(Bool.self, forKey: .warm) ?? false
        warmPasses = try c.decodeIfPresent(Int.self, forKey: .warmPasses) ?? 1
        // Records written before the maps existed have neither key.
        storageMap = try c.decodeIfPresent([String: String].self, forKey: .storageMap) ?? [:]
        bridgeMap = try c.decodeIfPresent([String: String].self, forKey: .bridgeMap) ?? [:]
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(source, forKey: .source)
        try c.encode(destination, forKey: .destination)
        try c.encode(instance, forKey: .instance)
        try c.encodeIfPresent(destinationName, forKey: .destinationName)
        try c.encodeIfPresent(primaryNode, forKey: .primaryNode)
        try c.encodeIfPresent(secondaryNode, forKey: .secondaryNode)
        try c.encodeIfPresent(diskTemplate, forKey: .diskTemplate)
        try c.encodeIfPresent(iallocator, forKey: .iallocator)
        try c.encode(compress.rawValue, forKey: .compress)
        try c.encode(keepSourceInstance, forKey: .keepSourceInstance)
        try c.encodeIfPresent(start, forKey: .start)
        try c.encode(hvparams, forKey: .hvparams)
        try c.encode(beparams, forKey: .beparams)
        try c.encode(osparams, forKey: .osparams)
        try c.encode(nicOverrides, forKey: .nicOverrides)
        try c.encodeIfPresent(bandwidthLimit, forKey: .bandwidthLimit)
        try c.encodeIfPresent(timeout, forKey: .timeout)
        try c.encode(opportunisticTries, forKey: .opportunisticTries)
        try c.encode(opportunisticDelay, forKey: .opportunisticDelay)
        try c.encode(warm, forKey: .warm)
        try c.encode(warmPasses, forKey: .warmPasses)
        if !storageMap.isEmpty { try c.encode(storageMap, forKey: .storageMap) }
        if !bridgeMap.isEmpty { try c.encode(bridgeMap, forKey: .bridgeMap) }
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
