import Foundation
import MoveTrust

/// How an instance looks through RAPI: `GET /2/instances/NAME` (Ganeti's `I_FIELDS`) and the
/// static result of `OpInstanceQueryData`, which `move-instance` reads to recreate it.
enum InstanceViews {
    static func fields(_ record: InstanceRecord, node: String, running: Bool) -> JSONValue {
        let spec = record.spec
        let sizes = spec.disks.map { JSONValue.int64($0.size) }
        var beparams = spec.beparams
        if let maxmem = beparams["maxmem"] ?? beparams["memory"] { beparams["memory"] = maxmem; beparams["maxmem"] = maxmem }
        func nicList(_ pick: (InstanceSpec.NIC) -> String?) -> JSONValue {
            .array(spec.nics.map { pick($0).map(JSONValue.string) ?? .null })
        }
        let status: String = switch (record.adminState, running) {
        case ("up", true): "running"
        case ("up", false): "ERROR_down"
        case (_, true): "ERROR_up"
        default: "ADMIN_down"
        }
        return .object([
            "name": .string(record.name),
            "admin_state": .string(record.adminState),
            "os": spec.os.map(JSONValue.string) ?? .null,
            "pnode": .string(node),
            "snodes": .array([]),
            "disk_template": .string(spec.diskTemplate),
            "nic.ips": nicList(\.ip), "nic.macs": nicList(\.mac), "nic.modes": nicList(\.mode),
            "nic.uuids": .array(spec.nics.indices.map { .string("\(record.uuid)-nic\($0)") }),
            "nic.names": nicList(\.name), "nic.links": nicList(\.link), "nic.networks": nicList(\.network),
            "nic.networks.names": nicList(\.network),
            "nic.bridges": .array(spec.nics.map { $0.mode == "bridged" ? ($0.link.map(JSONValue.string) ?? .null) : .null }),
            "network_port": .null,
            "disk.sizes": .array(sizes),
            "disk.spindles": .array(spec.disks.map { _ in .null }),
            "disk_usage": .int64(spec.disks.reduce(0) { $0 + $1.size }),
            "disk.uuids": .array(spec.disks.indices.map { .string("\(record.uuid)-disk\($0)") }),
            "disk.names": .array(spec.disks.map { $0.name.map(JSONValue.string) ?? .null }),
            "beparams": .object(beparams),
            "hvparams": .object(spec.hvparams),
            "oper_state": .bool(running),
            "oper_ram": running ? (beparams["memory"] ?? .null) : .null,
            "oper_vcpus": running ? (beparams["vcpus"] ?? .null) : .null,
            "status": .string(status),
            "custom_hvparams": .object(spec.hvparams),
            "custom_beparams": .object(spec.beparams),
            "custom_nicparams": .array(spec.nics.map { nic in
                .object(["mode": nic.mode.map(JSONValue.string) ?? .null, "link": nic.link.map(JSONValue.string) ?? .null])
            }),
            "ctime": .double(record.ctime), "mtime": .double(record.mtime),
            "uuid": .string(record.uuid), "serial_no": .int(record.serial),
            "tags": .array(spec.tags.map(JSONValue.string)),
            // gnt-move: `import-interrupted` marks an import a move may continue (gnt_move_continue).
            "gnt_move_lifecycle": .string(record.lifecycle),
        ])
    }

    /// `volumeGroup`: the LVM volume group the agent's disks live in (nil for file storage).
    static func queryData(_ record: InstanceRecord, node: String, volumeGroup: String? = nil) -> JSONValue {
        let spec = record.spec
        return .object([
            "name": .string(record.name),
            "os": spec.os.map(JSONValue.string) ?? .null,
            "hypervisor": .string(spec.hypervisor),
            "disk_template": .string(spec.diskTemplate),
            "pnode": .string(node), "pnode_group_uuid": .string("default"), "pnode_group_name": .string("default"),
            "uuid": .string(record.uuid),
            "config_state": .string(record.adminState),
            "run_state": .null,
            "snodes": .array([]), "snodes_group_uuids": .array([]), "snodes_group_names": .array([]),
            "nics": .array(spec.nics.enumerated().map { index, nic in
                func value(_ s: String?) -> JSONValue { s.map(JSONValue.string) ?? .null }
                return .array([value(nic.name), .string("\(record.uuid)-nic\(index)"), value(nic.ip), value(nic.mac),
                               value(nic.mode), value(nic.link), value(nic.vlan), value(nic.network), .null])
            }),
            "disks": .array(spec.disks.enumerated().map { index, disk in
                var fields: [String: JSONValue] = [
                    "iv_name": .string("disk/\(index)"), "dev_type": .string(spec.diskTemplate),
                    "logical_id": .array([.string(record.diskPaths.indices.contains(index) ? record.diskPaths[index] : "")]),
                    "drbd_info": .null, "pstatus": .null, "sstatus": .null, "children": .array([]),
                    "mode": .string(disk.mode), "size": .int64(disk.size), "spindles": .null,
                    "name": disk.name.map(JSONValue.string) ?? .null, "uuid": .string("\(record.uuid)-disk\(index)"),
                ]
                // Ganeti's disk parameter, which `--storage-map` maps (LVM storage only).
                if let volumeGroup { fields["vg"] = .string(volumeGroup) }
                return .object(fields)
            }),
            "network_port": .null,
            "hv_instance": .object(spec.hvparams), "be_instance": .object(spec.beparams), "os_instance": .object(spec.osparams),
            "hv_actual": .object(spec.hvparams), "be_actual": .object(spec.beparams), "os_actual": .object(spec.osparams),
            "serial_no": .int(record.serial), "ctime": .double(record.ctime), "mtime": .double(record.mtime),
            // Not in Ganeti's result (move-instance reads tags from GET /2/instances/NAME).
            "tags": .array(spec.tags.map(JSONValue.string)),
        ])
    }
}
