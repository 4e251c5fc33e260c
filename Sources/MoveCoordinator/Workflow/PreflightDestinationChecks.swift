import Foundation
import MoveTrust

/// `--preflight`'s checks of what the destination must offer the instance: its OS, its
/// hypervisor, a source name a Ganeti destination can resolve, and maps that apply.
extension Coordinator {
    func destinationChecks(_ request: MoveRequest, spec: JSONValue, destination: RAPIClient, destinationInfo: JSONValue,
                           features: [String]) async -> [Check] {
        var checks: [Check] = []
        if let os = spec["os"]?.stringValue, !os.isEmpty {
            checks.append(await osCheck(os, destination: destination))
        }
        checks.append(Self.hypervisorCheck(spec["hypervisor"]?.stringValue, destinationInfo: destinationInfo))
        // Ganeti's remote import resolves the source instance's name (a gnt-move agent does not).
        if !features.contains("gnt-move-stream-v1") {
            checks.append(Self.resolvableCheck(request.instance))
        }
        if !request.storageMap.isEmpty || !request.bridgeMap.isEmpty {
            checks.append(Self.mapsCheck(request, spec: spec))
        }
        return checks
    }

    /// The spec's OS among the destination's `GET /2/os` (a variant `name+v` also matches its
    /// base name, and a base name any of its variants).
    func osCheck(_ os: String, destination: RAPIClient) async -> Check {
        let name = "OS on the destination"
        let listed: [String]
        do {
            listed = (try await destination.request(.GET, "/2/os").arrayValue ?? []).compactMap(\.stringValue)
        } catch {
            return Check(name: name, passed: false, detail: "cannot list the destination's operating systems (GET /2/os): \(error)")
        }
        func base(_ text: String) -> Substring { text.split(separator: "+", maxSplits: 1).first ?? Substring(text) }
        guard listed.contains(os) || listed.contains(where: { base($0) == base(os) }) else {
            let offered = listed.isEmpty ? "none" : listed.prefix(20).joined(separator: ", ")
            return Check(name: name, passed: false, detail: "the instance's OS \(os) is not installed on the destination (it has: \(offered))")
        }
        return Check(name: name, passed: true, detail: "\(os) is installed")
    }

    /// The spec's hypervisor among the destination's `enabled_hypervisors` (`/2/info`).
    static func hypervisorCheck(_ hypervisor: String?, destinationInfo: JSONValue) -> Check {
        let name = "hypervisor on the destination"
        guard let hypervisor else { return Check(name: name, passed: true, detail: "the source names none: the destination's default") }
        guard let enabled = destinationInfo["enabled_hypervisors"]?.arrayValue?.compactMap(\.stringValue) else {
            return Check(name: name, passed: true, detail: "the destination does not list its hypervisors; \(hypervisor) is checked by its dry run", warning: true)
        }
        guard enabled.contains(hypervisor) else {
            return Check(name: name, passed: false, detail: "\(hypervisor) is not enabled on the destination (enabled: \(enabled.joined(separator: ", ")))")
        }
        return Check(name: name, passed: true, detail: "\(hypervisor) is enabled")
    }

    /// A Ganeti destination resolves `source_instance_name` (as the resolver here does).
    static let resolvableCheckName = "source name resolvable"

    static func resolvableCheck(_ instance: String) -> Check {
        let name = resolvableCheckName
        let addresses = HostIdentity.addresses(of: instance)
        guard !addresses.isEmpty else {
            return Check(name: name, passed: false,
                         detail: "\(instance) does not resolve here; a Ganeti destination resolves the source instance's name and refuses a name it cannot (add it to DNS or /etc/hosts)")
        }
        return Check(name: name, passed: true, detail: "\(instance) resolves to \(addresses.prefix(3).joined(separator: ", ")) (a Ganeti destination resolves it too)")
    }

    /// A map entry that matches nothing of the instance is a warning: probably a typo.
    static func mapsCheck(_ request: MoveRequest, spec: JSONValue) -> Check {
        let name = "storage and bridge maps"
        let template = spec["disk_template"]?.stringValue
        let groups = Set((spec["disks"]?.arrayValue ?? []).compactMap { ResourceMaps.sourceVolumeGroup($0, template: template) })
        let links = Set((spec["nics"]?.arrayValue ?? []).compactMap { nic -> String? in
            let parts = nic.arrayValue ?? []
            return parts.count > 5 ? parts[5].stringValue : nil
        })
        var unused: [String] = []
        for key in request.storageMap.keys.sorted() {
            let matches = key.hasPrefix(ResourceMaps.templatePrefix) ? String(key.dropFirst(ResourceMaps.templatePrefix.count)) == template : groups.contains(key)
            if !matches { unused.append("--storage-map \(key)") }
        }
        for key in request.bridgeMap.keys.sorted() where !links.contains(key) { unused.append("--bridge-map \(key)") }
        guard unused.isEmpty else {
            return Check(name: name, passed: true, detail: "\(unused.joined(separator: ", ")) match(es) nothing of \(request.instance)", warning: true)
        }
        return Check(name: name, passed: true, detail: "every entry applies to \(request.instance)")
    }
}
