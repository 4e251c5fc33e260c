/// What a move request changes in a signed instance spec, declared as such beside it
/// (`gnt_move_overrides`): the operator's `--dest-instance-name`, `--net`, `-B`, `-H`, `-O` and
/// `--dest-disk-template`. The destination applies only these, and only the groups its override
/// policy allows; any other difference between the request and the signed spec is refused.
public struct SpecOverrides: Sendable, Equatable {
    /// The parts of a spec an override may touch; an agent's policy lists the allowed ones.
    public enum Group: String, Sendable, CaseIterable {
        case name, nics, beparams, hvparams, osparams
        case diskTemplate = "disk_template"
    }

    public var name: String?
    public var diskTemplate: String?
    public var beparams: [String: JSONValue] = [:]
    public var hvparams: [String: JSONValue] = [:]
    public var osparams: [String: JSONValue] = [:]
    /// By NIC index: field → new value (nil clears it).
    public var nics: [Int: [String: String?]] = [:]

    public init() {}

    /// The groups this override touches.
    public var groups: [Group] {
        var groups: [Group] = []
        if name != nil { groups.append(.name) }
        if !nics.isEmpty { groups.append(.nics) }
        if !beparams.isEmpty { groups.append(.beparams) }
        if !hvparams.isEmpty { groups.append(.hvparams) }
        if !osparams.isEmpty { groups.append(.osparams) }
        if diskTemplate != nil { groups.append(.diskTemplate) }
        return groups
    }

    public var isEmpty: Bool { groups.isEmpty }

    public var json: JSONValue {
        var object: [String: JSONValue] = [:]
        if let name { object["name"] = .string(name) }
        if let diskTemplate { object["disk_template"] = .string(diskTemplate) }
        if !beparams.isEmpty { object["beparams"] = .object(beparams) }
        if !hvparams.isEmpty { object["hvparams"] = .object(hvparams) }
        if !osparams.isEmpty { object["osparams"] = .object(osparams) }
        if !nics.isEmpty {
            object["nics"] = .object(Dictionary(uniqueKeysWithValues: nics.map { index, fields in
                (String(index), JSONValue.object(fields.mapValues { $0.map(JSONValue.string) ?? .null }))
            }))
        }
        return .object(object)
    }

    /// Parses `gnt_move_overrides`; null or absent is no override. Every error names the field.
    public init(json: JSONValue?) throws(TrustError) {
        guard let json, json != .null else { return }
        func fail(_ field: String, _ expected: String) -> TrustError {
            TrustError(.spec, "gnt_move_overrides field '\(field)' must be \(expected)")
        }
        guard let object = json.objectValue else { throw fail("(whole)", "an object") }
        for key in object.keys where !["name", "disk_template", "beparams", "hvparams", "osparams", "nics"].contains(key) {
            throw fail(key, "one of name, disk_template, beparams, hvparams, osparams, nics")
        }
        func string(_ key: String) throws(TrustError) -> String? {
            guard let value = object[key], value != .null else { return nil }
            guard let text = value.stringValue, !text.isEmpty else { throw fail(key, "a non-empty string") }
            return text
        }
        func params(_ key: String) throws(TrustError) -> [String: JSONValue] {
            guard let value = object[key], value != .null else { return [:] }
            guard let params = value.objectValue else { throw fail(key, "an object") }
            return params
        }
        name = try string("name")
        diskTemplate = try string("disk_template")
        beparams = try params("beparams")
        hvparams = try params("hvparams")
        osparams = try params("osparams")
        if let value = object["nics"], value != .null {
            guard let byIndex = value.objectValue else { throw fail("nics", "an object keyed by NIC index") }
            for (key, fields) in byIndex {
                guard let index = Int(key), index >= 0, index < 64 else { throw fail("nics.\(key)", "keyed by a NIC index 0-63") }
                guard let fieldObject = fields.objectValue else { throw fail("nics.\(key)", "an object") }
                var parsed: [String: String?] = [:]
                for (field, value) in fieldObject {
                    guard InstanceSpec.NIC.fields.contains(field) else { throw fail("nics.\(key).\(field)", "one of \(InstanceSpec.NIC.fields.joined(separator: ", "))") }
                    switch value {
                    case .null: parsed[field] = .some(nil)
                    case .string(let text): parsed[field] = text
                    default: throw fail("nics.\(key).\(field)", "a string or null")
                    }
                }
                nics[index] = parsed
            }
        }
    }

    /// The spec with these overrides applied. A NIC index beyond the spec's NICs is refused.
    public func apply(to spec: InstanceSpec) throws(TrustError) -> InstanceSpec {
        var result = spec
        if let name { result.name = name }
        if let diskTemplate { result.diskTemplate = diskTemplate }
        for (key, value) in beparams { result.beparams[key] = value }
        for (key, value) in hvparams { result.hvparams[key] = value }
        for (key, value) in osparams { result.osparams[key] = value }
        for (index, fields) in nics {
            guard result.nics.indices.contains(index) else {
                throw TrustError(.spec, "gnt_move_overrides field 'nics.\(index)' names a NIC the instance does not have (it has \(result.nics.count))")
            }
            for (field, value) in fields { result.nics[index].set(field, value) }
        }
        return result
    }

    /// One line per override, for job logs and `status`.
    public var descriptions: [String] {
        var lines: [String] = []
        if let name { lines.append("name=\(name)") }
        if let diskTemplate { lines.append("disk_template=\(diskTemplate)") }
        for (group, params) in [("beparams", beparams), ("hvparams", hvparams), ("osparams", osparams)] {
            for key in params.keys.sorted() { lines.append("\(group).\(key)=\(params[key].map(PythonFormat.percentS) ?? "")") }
        }
        for index in nics.keys.sorted() {
            for (field, value) in (nics[index] ?? [:]).sorted(by: { $0.key < $1.key }) { lines.append("nics[\(index)].\(field)=\(value ?? "None")") }
        }
        return lines
    }
}

extension InstanceSpec.NIC {
    mutating func set(_ field: String, _ value: String?) {
        switch field {
        case "name": name = value
        case "mac": mac = value
        case "ip": ip = value
        case "mode": mode = value
        case "link": link = value
        case "vlan": vlan = value
        case "network": network = value
        default: break
        }
    }
}
