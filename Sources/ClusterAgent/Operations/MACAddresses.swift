import Foundation
import MoveTrust
import OpenSSLSupport

/// NIC MAC addresses as Ganeti assigns them: `generate` (or `auto`) in a create request means
/// a new address with the cluster's prefix (Ganeti's default `aa:00:00`), unique in the cluster.
enum MACAddresses {
    static let prefix = "aa:00:00"

    static func isPlaceholder(_ mac: String?) -> Bool { mac == "generate" || mac == "auto" }

    /// A fresh address not in `taken` (compared case-insensitively).
    static func generate(avoiding taken: Set<String>) -> String {
        while true {
            let bytes = SecureRandom.bytes(3)
            let mac = prefix + bytes.map { ":" + String(format: "%02x", $0) }.joined()
            if !taken.contains(mac) { return mac }
        }
    }

    /// `spec` with every placeholder MAC replaced by a generated one, unique among the agent's
    /// instances and the spec's own NICs.
    static func resolving(_ spec: InstanceSpec, taken instances: [InstanceRecord]) -> InstanceSpec {
        guard spec.nics.contains(where: { isPlaceholder($0.mac) }) else { return spec }
        var taken = Set(instances.flatMap { $0.spec.nics.compactMap { $0.mac?.lowercased() } })
        taken.formUnion(spec.nics.compactMap { $0.mac?.lowercased() })
        var resolved = spec
        for index in resolved.nics.indices where isPlaceholder(resolved.nics[index].mac) {
            let mac = generate(avoiding: taken)
            taken.insert(mac)
            resolved.nics[index].mac = mac
        }
        return resolved
    }
}
