import BlockStream
import Foundation
import MoveTrust

/// Ganeti's OS API, for what a move needs: the `rename` script, run by the destination when the
/// instance's name changed. An instance without an OS is copied as raw disks and needs none.
struct OSScripts {
    let searchPath: [String]

    func folder(for os: String) -> String? {
        let base = os.split(separator: "+").first.map(String.init) ?? os
        return searchPath.map { "\($0)/\(base)" }.first { FileManager.default.fileExists(atPath: $0 + "/ganeti_api_version") || FileManager.default.fileExists(atPath: $0 + "/rename") }
    }

    /// The OS definitions of the search path as Ganeti's `GET /2/os` lists them: a folder with
    /// `ganeti_api_version` is an OS, listed once per line of its `variants.list` as
    /// `name+variant`, or by its name when it has no variants; the first folder of a name wins.
    func available() -> [String] {
        var names: [String] = []
        var seen: Set<String> = []
        for folder in searchPath {
            let entries = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
            for name in entries where !seen.contains(name) && NameRules.isValid(name, .osName)
                && FileManager.default.fileExists(atPath: "\(folder)/\(name)/ganeti_api_version") {
                seen.insert(name)
                let variants = ((try? String(contentsOfFile: "\(folder)/\(name)/variants.list", encoding: .utf8)) ?? "")
                    .split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
                    .filter { !$0.isEmpty && NameRules.isValid($0, .osName) }
                names += variants.isEmpty ? [name] : variants.map { "\(name)+\($0)" }
            }
        }
        return names
    }

    /// Ganeti's environment for OS scripts (`OSEnvironment`).
    func environment(spec: InstanceSpec, diskPaths: [String]) -> [String: String] {
        var env: [String: String] = [
            "OS_API_VERSION": "20", "INSTANCE_NAME": spec.name, "HYPERVISOR": spec.hypervisor,
            "DISK_COUNT": String(diskPaths.count), "NIC_COUNT": String(spec.nics.count), "DEBUG_LEVEL": "0",
            "INSTANCE_OS": spec.os ?? "",
        ]
        if let os = spec.os, let variant = os.split(separator: "+", maxSplits: 1).dropFirst().first { env["OS_VARIANT"] = String(variant) }
        for (index, path) in diskPaths.enumerated() {
            env["DISK_\(index)_PATH"] = path
            env["DISK_\(index)_ACCESS"] = spec.disks[index].mode
        }
        for (index, nic) in spec.nics.enumerated() {
            if let mac = nic.mac { env["NIC_\(index)_MAC"] = mac }
            if let ip = nic.ip { env["NIC_\(index)_IP"] = ip }
            if let mode = nic.mode { env["NIC_\(index)_MODE"] = mode }
            if let link = nic.link { env["NIC_\(index)_LINK"] = link; if nic.mode == "bridged" { env["NIC_\(index)_BRIDGE"] = link } }
        }
        for (key, value) in spec.beparams { env["INSTANCE_BE_\(key)"] = PythonFormat.percentS(value) }
        for (key, value) in spec.hvparams { env["INSTANCE_HV_\(key)"] = PythonFormat.percentS(value) }
        for (key, value) in spec.osparams { env["OSP_\(key.uppercased())"] = PythonFormat.percentS(value) }
        return env
    }

    /// The OS folder with `script`, or a clear refusal: an instance with an OS is moved through
    /// its OS's import/export scripts on both sides, as Ganeti does.
    func require(_ os: String, script: String) throws -> String {
        guard let folder = folder(for: os), FileManager.default.isExecutableFile(atPath: folder + "/" + script) else {
            throw AgentError.wrongInput("OS '\(os)' has no '\(script)' script on this cluster (searched \(searchPath.joined(separator: ", ")))")
        }
        return folder
    }

    /// How one disk's daemon reaches the disk: through the OS's `import`/`export` script when the
    /// instance has an OS (`folder`), with Ganeti's IMPORT_*/EXPORT_* variables; otherwise the
    /// daemon reads or writes the disk itself (`path`, its source or destination).
    func diskAccess(mode: ImportExportOptions.Mode, folder: String?, spec: InstanceSpec, diskPaths: [String], index: Int)
        -> (script: DiskTransferProcess.OSScript?, path: String?) {
        let path = diskPaths[index]
        guard let folder else { return (nil, path) }
        var environment = self.environment(spec: spec, diskPaths: diskPaths)
        if mode == .export {
            environment["EXPORT_DEVICE"] = path
            environment["EXPORT_DISK_PATH"] = path
            environment["EXPORT_INDEX"] = String(index)
        } else {
            environment["IMPORT_DEVICE"] = path
            environment["IMPORT_INDEX"] = String(index)
        }
        return (.init(folder: folder, environment: environment), nil)
    }

    /// Runs the OS's `rename` script (from its folder, as Ganeti does) when the name changed;
    /// `timeout` in seconds (``HostCommand``).
    func renameIfNeeded(spec: InstanceSpec, oldName: String, diskPaths: [String], timeout: Double, context: JobContext) async throws {
        guard spec.name != oldName, let os = spec.os else { return }
        guard let folder = folder(for: os) else {
            context.log(" - WARNING: OS '\(os)' not found; rename script for \(spec.name) not run")
            return
        }
        context.log("Running rename script for \(spec.name)")
        var env = environment(spec: spec, diskPaths: diskPaths)
        env["OLD_INSTANCE_NAME"] = oldName
        try await HostCommand("cd \"$(dirname %s)\" && ./rename", timeout: timeout).run(folder + "/rename", environment: env)
    }
}
