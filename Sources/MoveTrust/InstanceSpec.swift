/// What a destination needs to recreate an instance, as the source describes it. Its JSON form is
/// canonical (see ``JSONValue/serialized``) so that it can be signed (``SignedInstanceSpec``).
public struct InstanceSpec: Sendable, Equatable {
    public struct Disk: Sendable, Equatable {
        /// Size in MiB, as in Ganeti.
        public var size: Int64
        public var mode: String
        public var name: String?

        public init(size: Int64, mode: String = "rw", name: String? = nil) {
            self.size = size
            self.mode = mode
            self.name = name
        }
    }

    public struct NIC: Sendable, Equatable {
        public var name: String?
        public var mac: String?
        public var ip: String?
        public var mode: String?
        public var link: String?
        public var vlan: String?
        public var network: String?

        public init(name: String? = nil, mac: String? = nil, ip: String? = nil, mode: String? = nil,
                    link: String? = nil, vlan: String? = nil, network: String? = nil) {
            (self.name, self.mac, self.ip, self.mode, self.link, self.vlan, self.network) = (name, mac, ip, mode, link, vlan, network)
        }

        static let fields = ["name", "mac", "ip", "mode", "link", "vlan", "network"]
        var values: [String?] { [name, mac, ip, mode, link, vlan, network] }
        /// The field names and values, in the same order.
        public static var fieldNames: [String] { fields }
        public var fieldValues: [String?] { values }
    }

    public var name: String
    public var diskTemplate: String
    public var disks: [Disk]
    public var nics: [NIC]
    public var os: String?
    public var hypervisor: String
    public var beparams: [String: JSONValue]
    public var hvparams: [String: JSONValue]
    public var osparams: [String: JSONValue]
    public var tags: [String]

    public init(name: String, diskTemplate: String, disks: [Disk], nics: [NIC] = [], os: String? = nil,
                hypervisor: String, beparams: [String: JSONValue] = [:], hvparams: [String: JSONValue] = [:],
                osparams: [String: JSONValue] = [:], tags: [String] = []) {
        self.name = name
        self.diskTemplate = diskTemplate
        self.disks = disks
        self.nics = nics
        self.os = os
        self.hypervisor = hypervisor
        self.beparams = beparams
        self.hvparams = hvparams
        self.osparams = osparams
        self.tags = tags
    }

    public var json: JSONValue {
        func optional(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
        return .object([
            "name": .string(name),
            "disk_template": .string(diskTemplate),
            "disks": .array(disks.map { .object(["size": .int64($0.size), "mode": .string($0.mode), "name": optional($0.name)]) }),
            "nics": .array(nics.map { nic in
                .object(Dictionary(uniqueKeysWithValues: zip(NIC.fields, nic.values.map(optional))))
            }),
            "os": optional(os),
            "hypervisor": .string(hypervisor),
            "beparams": .object(beparams),
            "hvparams": .object(hvparams),
            "osparams": .object(osparams),
            "tags": .array(tags.map(JSONValue.string)),
        ])
    }

    /// Parses the JSON form; every error names the field.
    public init(json: JSONValue) throws(TrustError) {
        func fail(_ field: String, _ expected: String) -> TrustError {
            TrustError(.spec, "instance spec field '\(field)' must be \(expected)")
        }
        guard let object = json.objectValue else { throw TrustError(.spec, "instance spec must be a JSON object") }
        func string(_ key: String) throws(TrustError) -> String {
            guard let s = object[key]?.stringValue, !s.isEmpty else { throw fail(key, "a non-empty string") }
            return s
        }
        func optionalString(_ value: JSONValue?, _ key: String) throws(TrustError) -> String? {
            switch value {
            case nil, .null?: return nil
            case .string(let s)?: return s
            default: throw fail(key, "a string or null")
            }
        }
        func params(_ key: String) throws(TrustError) -> [String: JSONValue] {
            guard let value = object[key] else { return [:] }
            guard let dict = value.objectValue else { throw fail(key, "an object") }
            return dict
        }
        name = try string("name")
        diskTemplate = try string("disk_template")
        hypervisor = try string("hypervisor")
        os = try optionalString(object["os"], "os")
        guard let diskList = object["disks"]?.arrayValue, !diskList.isEmpty else { throw fail("disks", "a non-empty array") }
        var parsedDisks: [Disk] = []
        for (i, disk) in diskList.enumerated() {
            guard let size = disk["size"]?.integerValue, size > 0 else { throw fail("disks[\(i)].size", "a positive integer (MiB)") }
            let mode = try optionalString(disk["mode"], "disks[\(i)].mode") ?? "rw"
            parsedDisks.append(Disk(size: size, mode: mode, name: try optionalString(disk["name"], "disks[\(i)].name")))
        }
        disks = parsedDisks
        guard let nicList = (object["nics"] ?? .array([])).arrayValue else { throw fail("nics", "an array") }
        var parsedNICs: [NIC] = []
        for (i, nic) in nicList.enumerated() {
            guard nic.objectValue != nil else { throw fail("nics[\(i)]", "an object") }
            var values: [String?] = []
            for field in NIC.fields { values.append(try optionalString(nic[field], "nics[\(i)].\(field)")) }
            parsedNICs.append(NIC(name: values[0], mac: values[1], ip: values[2], mode: values[3], link: values[4], vlan: values[5], network: values[6]))
        }
        nics = parsedNICs
        beparams = try params("beparams")
        hvparams = try params("hvparams")
        osparams = try params("osparams")
        guard let tagList = (object["tags"] ?? .array([])).arrayValue else { throw fail("tags", "an array of strings") }
        var parsedTags: [String] = []
        for tag in tagList {
            guard let t = tag.stringValue else { throw fail("tags", "an array of strings") }
            parsedTags.append(t)
        }
        tags = parsedTags
    }
}
