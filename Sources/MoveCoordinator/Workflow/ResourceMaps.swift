import Foundation
import MoveTrust

/// `--storage-map OLD=NEW` and `--bridge-map OLD=NEW` (`storage_map`, `bridge_map` in a `run`
/// request): where a moved instance's disks land and which bridges its NICs use on the
/// destination. A storage key `template:OLD` maps the disk template; any other key maps a volume
/// group (Ganeti's disk parameter `vg`).
public enum ResourceMaps {
    /// The prefix of a storage-map key that maps a disk template rather than a volume group.
    public static let templatePrefix = "template:"
    /// Ganeti's disk templates (`constants.DISK_TEMPLATES`).
    public static let diskTemplates = ["diskless", "file", "sharedfile", "plain", "blockdev", "drbd", "rbd", "ext", "gluster"]

    public enum Kind: String, Sendable {
        case storage = "--storage-map"
        case bridge = "--bridge-map"

        /// The field of a `run` request.
        public var field: String { self == .storage ? "'storage_map'" : "'bridge_map'" }
    }

    /// `OLD=NEW` items of a repeatable option, each checked; a refusal names the option.
    public static func parse(_ items: [String], _ kind: Kind) throws(CoordinatorError) -> [String: String] {
        var map: [String: String] = [:]
        for item in items {
            let parts = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else {
                throw CoordinatorError.badRequest("\(kind.rawValue) '\(NameRules.printable(item))': expected OLD=NEW")
            }
            guard map[parts[0]] == nil else {
                throw CoordinatorError.badRequest("\(kind.rawValue) '\(NameRules.printable(item))': '\(NameRules.printable(parts[0]))' is mapped twice")
            }
            map[parts[0]] = parts[1]
        }
        try check(map, kind)
        return map
    }

    /// Every name of a map valid for what it names (NameRules; disk templates: Ganeti's list);
    /// a refusal names `option` (default: the command-line option).
    public static func check(_ map: [String: String], _ kind: Kind, option: String? = nil) throws(CoordinatorError) {
        let label = option ?? kind.rawValue
        for (old, new) in map.sorted(by: { $0.key < $1.key }) {
            do {
                switch kind {
                case .bridge:
                    try NameRules.check(old, .link, field: "\(label) bridge")
                    try NameRules.check(new, .link, field: "\(label) bridge")
                case .storage:
                    if old.hasPrefix(templatePrefix) {
                        for template in [String(old.dropFirst(templatePrefix.count)), new] where !diskTemplates.contains(template) {
                            throw CoordinatorError.badRequest("\(label) '\(NameRules.printable(old))=\(NameRules.printable(new))': '\(NameRules.printable(template))' is not a disk template (one of \(diskTemplates.joined(separator: ", ")))")
                        }
                    } else {
                        try NameRules.check(old, .volumeGroup, field: "\(label) volume group")
                        try NameRules.check(new, .volumeGroup, field: "\(label) volume group")
                    }
                }
            } catch let error as CoordinatorError {
                throw error
            } catch {
                throw CoordinatorError.badRequest("\(error)")
            }
        }
    }

    /// The template maps of a storage map (`template:OLD` → NEW).
    public static func templates(_ storageMap: [String: String]) -> [String: String] {
        var result: [String: String] = [:]
        for (key, value) in storageMap where key.hasPrefix(templatePrefix) { result[String(key.dropFirst(templatePrefix.count))] = value }
        return result
    }

    /// The volume-group maps of a storage map.
    public static func volumeGroups(_ storageMap: [String: String]) -> [String: String] {
        storageMap.filter { !$0.key.hasPrefix(templatePrefix) }
    }

    /// A template map that contradicts `--dest-disk-template`: both name the destination's
    /// template, so they must agree.
    public static func checkAgreement(_ storageMap: [String: String], diskTemplate: String?,
                                      names: (storage: String, template: String) = ("--storage-map", "--dest-disk-template")) throws(CoordinatorError) {
        guard let diskTemplate else { return }
        for (old, new) in templates(storageMap).sorted(by: { $0.key < $1.key }) where new != diskTemplate {
            throw CoordinatorError.badRequest("\(names.storage) template:\(old)=\(new) contradicts \(names.template) \(diskTemplate): give one of them, or map to \(diskTemplate)")
        }
    }

    /// A NIC's link (bridge) in the source's instance data: Ganeti's NIC tuple
    /// `[name, uuid, ip, mac, mode, link, vlan, network]`.
    public static func link(ofNIC nic: JSONValue) -> String? {
        guard let parts = nic.arrayValue, parts.count > 5 else { return nil }
        return parts[5].stringValue
    }

    /// The volume group a disk of the source's instance data lives in, when it says: Ganeti's
    /// `vg` parameter, a `plain` disk's `logical_id` `[vg, lv]`, or a DRBD disk's data child;
    /// nil for file disks and agents' images.
    public static func sourceVolumeGroup(_ disk: JSONValue, template: String?) -> String? {
        if let vg = disk["vg"]?.stringValue, !vg.isEmpty { return vg }
        if let vg = disk["params"]?["vg"]?.stringValue, !vg.isEmpty { return vg }
        let devType = disk["dev_type"]?.stringValue ?? template
        if devType == "plain", let id = disk["logical_id"]?.arrayValue, id.count == 2, let vg = id[0].stringValue, !vg.isEmpty { return vg }
        if devType == "drbd" || devType == "drbd8", let child = disk["children"]?.arrayValue?.first { return sourceVolumeGroup(child, template: "plain") }
        return nil
    }
}
