import BlockStream
import Foundation
import MoveTrust

/// Every name and number of an instance spec is checked before it touches a path, a command or
/// an OS script (Ganeti's rules; see ``NameRules``). Errors are `wrong_input` and name the field.
enum SpecValidation {
    /// Ganeti's limits: `MAX_DISKS`, `MAX_NICS`, `MAX_TAGS_PER_OBJ`.
    static let maxDisks = 16
    static let maxNICs = 8
    static let maxTags = 4096
    /// 1 EiB in MiB: a size larger than this is a mistake, and its byte count must fit in Int64.
    static let maxDiskMiB: Int64 = 1 << 40
    static let nicModes = ["bridged", "routed", "openvswitch"]
    static let diskModes = ["rw", "ro"]

    static func check(_ spec: InstanceSpec) throws {
        try name(spec.name, .hostname, "instance name")
        if let os = spec.os { try name(os, .osName, "os") }
        guard (1...maxDisks).contains(spec.disks.count) else {
            throw AgentError.wrongInput("disks: an instance has 1 to \(maxDisks) disks, not \(spec.disks.count)")
        }
        for (index, disk) in spec.disks.enumerated() {
            guard (1...maxDiskMiB).contains(disk.size) else {
                throw AgentError.wrongInput("disks[\(index)].size: \(disk.size) MiB is out of range (1 to \(maxDiskMiB) MiB)")
            }
            guard diskModes.contains(disk.mode) else { throw AgentError.wrongInput("disks[\(index)].mode: '\(disk.mode)' is not rw or ro") }
            if let diskName = disk.name { try name(diskName, .link, "disks[\(index)].name") }
        }
        _ = try totalBytes(spec.disks.map(\.size))
        guard spec.nics.count <= maxNICs else { throw AgentError.wrongInput("nics: at most \(maxNICs) NICs, not \(spec.nics.count)") }
        for (index, nic) in spec.nics.enumerated() {
            if let mode = nic.mode, !nicModes.contains(mode) {
                throw AgentError.wrongInput("nics[\(index)].mode: '\(mode)' is not one of \(nicModes.joined(separator: ", "))")
            }
            if let link = nic.link { try name(link, .link, "nics[\(index)].link") }
            if let network = nic.network { try name(network, .link, "nics[\(index)].network") }
            if let nicName = nic.name { try name(nicName, .link, "nics[\(index)].name") }
            if let vlan = nic.vlan, !vlan.isEmpty, !vlan.utf8.allSatisfy({ (0x30...0x39).contains($0) || $0 == UInt8(ascii: ":") || $0 == UInt8(ascii: ".") }) {
                throw AgentError.wrongInput("nics[\(index)].vlan: '\(vlan.prefix(40))' is not a VLAN list (digits, ':' and '.')")
            }
            if let mac = nic.mac, !isMAC(mac) { throw AgentError.wrongInput("nics[\(index)].mac: '\(mac.prefix(40))' is not a MAC address, 'auto' or 'generate'") }
            if let ip = nic.ip, ip != "pool", !NetworkNames.isIPv4(ip), !NetworkNames.isIPv6(ip) {
                throw AgentError.wrongInput("nics[\(index)].ip: '\(ip.prefix(40))' is not an IP address or 'pool'")
            }
        }
        guard spec.tags.count <= maxTags else { throw AgentError.wrongInput("tags: at most \(maxTags) tags, not \(spec.tags.count)") }
        for (index, tag) in spec.tags.enumerated() { try name(tag, .tag, "tags[\(index)]") }
        for (group, params) in [("beparams", spec.beparams), ("hvparams", spec.hvparams), ("osparams", spec.osparams)] {
            // Keys become environment variable names of OS scripts (INSTANCE_BE_x, OSP_X).
            for key in params.keys where key.isEmpty || key.utf8.count > 64
                || !key.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x41...0x5a).contains($0) || (0x61...0x7a).contains($0) || $0 == UInt8(ascii: "_") }) {
                throw AgentError.wrongInput("\(group): parameter name '\(NameRulesText.short(key))' is not valid (letters, digits and '_', at most 64)")
            }
        }
    }

    /// A body's `compress`: absent or null is `none`; anything but a name the daemons accept is
    /// refused before anything is created.
    static func compression(_ value: JSONValue?) throws -> CompressionMethod {
        guard let value, value != .null else { return .none }
        guard let text = value.stringValue, let method = CompressionMethod(rawValue: text) else {
            throw AgentError.wrongInput("compress: '\(NameRulesText.short(value.stringValue ?? value.serialized))' is not one of \(CompressionMethod.acceptedNames)")
        }
        return method
    }

    /// The sum of disk sizes in bytes, refused rather than overflowing.
    static func totalBytes(_ sizesMiB: [Int64]) throws -> Int64 {
        var total: Int64 = 0
        for (index, size) in sizesMiB.enumerated() {
            guard (1...maxDiskMiB).contains(size) else {
                throw AgentError.wrongInput("disks[\(index)].size: \(size) MiB is out of range (1 to \(maxDiskMiB) MiB)")
            }
            let (sum, overflow) = total.addingReportingOverflow(size << 20)
            guard !overflow else { throw AgentError.wrongInput("disks: the total size overflows") }
            total = sum
        }
        return total
    }

    static func name(_ value: String, _ kind: NameRules.Kind, _ field: String) throws {
        do {
            try NameRules.check(value, kind, field: field)
        } catch {
            throw AgentError.wrongInput("\(error)")
        }
    }

    static func isMAC(_ text: String) -> Bool {
        if text == "auto" || text == "generate" { return true }
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        return parts.count == 6 && parts.allSatisfy { $0.utf8.count == 2 && $0.utf8.allSatisfy(\.isHexDigit) }
    }
}

enum NameRulesText {
    static func short(_ text: String) -> String {
        String(text.unicodeScalars.prefix(40).map { $0.value >= 0x20 && $0.value < 0x7f ? Character($0) : "?" })
    }
}

private extension UInt8 {
    var isHexDigit: Bool { (0x30...0x39).contains(self) || (0x41...0x46).contains(self) || (0x61...0x66).contains(self) }
}
