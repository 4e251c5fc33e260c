import Foundation
import MoveTrust

extension Coordinator {
    /// What a move will do, as `--preflight` shows it before its checks: built from the source's
    /// instance data and the destination's `/2/info` and `/2/features`, creating nothing.
    public struct Plan: Sendable, Equatable {
        public struct Disk: Sendable, Equatable {
            public let index: Int
            public let sizeMiB: Int64?
            public let sourceTemplate: String?
            /// The destination's disk template.
            public let template: String?
            public let sourceVolumeGroup: String?
            /// The volume group `--storage-map` names on the destination (nil: its default).
            public let volumeGroup: String?
        }

        public struct NIC: Sendable, Equatable {
            public let index: Int
            public let link: String?
            public let destinationLink: String?
        }

        public let instance: String
        public let targetName: String
        public let destinationCluster: String?
        public let disks: [Disk]
        public let nics: [NIC]
        public let os: String?
        public let hypervisor: String?
        public let compress: String
        /// `gnt-move/1` or `ganeti`.
        public let stream: String
        /// The node asked for (`--dest-primary-node`), or nil when an iallocator chooses.
        public let destinationNode: String?
        public let iallocator: String?
        public let warm: Bool
        public let warmPasses: Int
        public let sourceRunning: Bool
        public let start: Bool
        public let keepSource: Bool
        public let storageMap: [String: String]
        public let bridgeMap: [String: String]

        public static let streamV1 = "gnt-move/1"
        public static let streamGaneti = "ganeti"

        /// The plan of `request`, from the source's instance data (`spec`, one entry of
        /// `OpInstanceQueryData`'s result) and the destination's info and features.
        public init(request: MoveRequest, spec: JSONValue, sourceFeatures: [String], destinationFeatures: [String], destinationInfo: JSONValue) {
            instance = request.instance
            targetName = request.targetName
            destinationCluster = destinationInfo["name"]?.stringValue
            let sourceTemplate = spec["disk_template"]?.stringValue
            let template = request.destinationTemplate(spec: spec)
            let groups = request.mappedVolumeGroups(spec: spec)
            disks = (spec["disks"]?.arrayValue ?? []).enumerated().map { index, disk in
                Disk(index: index, sizeMiB: disk["size"]?.integerValue, sourceTemplate: sourceTemplate, template: template,
                     sourceVolumeGroup: ResourceMaps.sourceVolumeGroup(disk, template: sourceTemplate),
                     volumeGroup: groups.indices.contains(index) ? groups[index] : nil)
            }
            let overrides = request.overrides(spec: spec)
            nics = (spec["nics"]?.arrayValue ?? []).enumerated().map { index, nic in
                let link = ResourceMaps.link(ofNIC: nic)
                let destinationLink: String? = switch overrides.nics[index]?["link"] {
                case .some(let value): value
                case .none: link
                }
                return NIC(index: index, link: link, destinationLink: destinationLink)
            }
            os = spec["os"]?.stringValue
            hypervisor = spec["hypervisor"]?.stringValue
            compress = request.compress.rawValue
            let v1 = "gnt-move-stream-v1"
            stream = sourceFeatures.contains(v1) && destinationFeatures.contains(v1) ? Self.streamV1 : Self.streamGaneti
            destinationNode = request.primaryNode
            iallocator = request.primaryNode == nil ? (request.iallocator ?? destinationInfo["default_iallocator"]?.stringValue) : nil
            warm = request.warm
            warmPasses = request.warmPasses
            sourceRunning = spec["config_state"]?.stringValue == "up"
            start = request.start ?? sourceRunning
            keepSource = request.keepSourceInstance
            storageMap = request.storageMap
            bridgeMap = request.bridgeMap
        }

        /// The `preflight-plan` event (`schemas/run-event.schema.json`).
        public var json: JSONValue {
            func optional(_ text: String?) -> JSONValue { text.map(JSONValue.string) ?? .null }
            return .object([
                "event": .string("preflight-plan"),
                "instance": .string(instance),
                "destination_instance": .string(targetName),
                "destination_cluster": optional(destinationCluster),
                "disks": .array(disks.map { disk in
                    .object(["index": .int(disk.index), "size_mib": disk.sizeMiB.map(JSONValue.int64) ?? .null,
                             "source_template": optional(disk.sourceTemplate), "template": optional(disk.template),
                             "source_vg": optional(disk.sourceVolumeGroup), "vg": optional(disk.volumeGroup)])
                }),
                "nics": .array(nics.map { .object(["index": .int($0.index), "link": optional($0.link), "destination_link": optional($0.destinationLink)]) }),
                "os": optional(os),
                "hypervisor": optional(hypervisor),
                "compress": .string(compress),
                "stream": .string(stream),
                "destination_node": optional(destinationNode),
                "iallocator": optional(iallocator),
                "source_stop": .string(warm ? "warm" : "always"),
                "start": .bool(start),
                "source_instance": .string(keepSource ? "kept" : "removed"),
                "storage_map": .object(storageMap.mapValues(JSONValue.string)),
                "bridge_map": .object(bridgeMap.mapValues(JSONValue.string)),
            ])
        }

        /// The plan for an operator: one labelled line each.
        public var lines: [String] {
            var lines: [(String, String)] = []
            lines.append(("target", "\(targetName) on \(destinationCluster ?? "the destination")"
                + (targetName == instance ? "" : " (renamed from \(instance))")))
            for disk in disks {
                let size = disk.sizeMiB.map { "\($0) MiB" } ?? "size unknown"
                var template = disk.template ?? "?"
                if let source = disk.sourceTemplate, source != disk.template { template = "\(source) → \(template)" }
                let storage: String
                switch (disk.sourceVolumeGroup, disk.volumeGroup) {
                case (let old?, let new?): storage = "volume group \(old) → \(new)"
                case (_, let new?): storage = "volume group \(new)"
                case (let old?, nil): storage = "the destination's default storage (source volume group \(old), not mapped)"
                case (nil, nil): storage = "the destination's default storage"
                }
                lines.append(("disk \(disk.index)", "\(size), template \(template), \(storage)"))
            }
            for nic in nics {
                let link = nic.link ?? "none"
                lines.append(("nic \(nic.index)", nic.destinationLink == nic.link ? "link \(link) (unchanged)" : "link \(link) → \(nic.destinationLink ?? "none")"))
            }
            if let os { lines.append(("os", os)) }
            if let hypervisor { lines.append(("hypervisor", hypervisor)) }
            lines.append(("compression", compress))
            lines.append(("stream", stream == Self.streamV1
                ? "gnt-move/1 (both clusters advertise gnt-move-stream-v1)" : "Ganeti's stream (a cluster without gnt-move-stream-v1)"))
            lines.append(("destination node", destinationNode ?? "chosen by iallocator \(iallocator ?? "(the destination's default)")"))
            lines.append(("source stop", warm
                ? "warm: stopped after up to \(warmPasses) pre-copy pass(es) while it runs, then only what changed is sent"
                : (sourceRunning ? "always: stopped before its disks are read" : "always: it is already stopped")))
            lines.append(("on the destination", start ? "started" + (sourceRunning ? " (it runs on the source)" : "") : "left stopped"))
            lines.append(("source instance", keepSource ? "kept, stopped (--keep-source-instance)" : "removed once both clusters confirmed every disk"))
            if !storageMap.isEmpty { lines.append(("storage map", storageMap.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))) }
            if !bridgeMap.isEmpty { lines.append(("bridge map", bridgeMap.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: ", "))) }
            let width = lines.map(\.0.count).max() ?? 0
            return lines.map { $0.0.padding(toLength: width, withPad: " ", startingAt: 0) + "  " + $0.1 }
        }
    }
}
