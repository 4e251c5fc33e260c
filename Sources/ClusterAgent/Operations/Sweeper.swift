import BlockStream
import Foundation
import MoveTrust

/// Cleans up what crashes and abandoned moves leave behind (Ganeti leaves all of it; docs/protocol.md §9.4,
/// §9.9): expired per-move keys, half-created imports, and import/export daemons whose job is
/// gone.
extension ClusterAgentService {
    /// At start-up no job of this agent can be running, so every instance still marked
    /// `creating` or `importing` was abandoned by a crash, and every daemon left in the import-export folder
    /// is an orphan. Run by ``AgentServer/run(service:limits:onListening:)`` before it serves.
    public func recoverAfterRestart() async {
        for folder in transferFolders() {
            if let text = try? String(contentsOfFile: folder + "/pid", encoding: .utf8), let pid = Int32(text.trimmingCharacters(in: .whitespacesAndNewlines)),
               let command = try? String(contentsOfFile: "/proc/\(pid)/cmdline", encoding: .utf8), command.contains(ImportExportOptions.subcommand) {
                // An orphan must be gone before anything else touches the disk it writes.
                kill(pid, SIGTERM)
                var waited = 0
                while FileManager.default.fileExists(atPath: "/proc/\(pid)/cmdline"), waited < 500 {
                    if waited == 250 { kill(pid, SIGKILL) }
                    try? await Task.sleep(nanoseconds: 20_000_000)
                    waited += 1
                }
            }
            try? FileManager.default.removeItem(atPath: folder)
        }
        for record in (try? database.instances()) ?? [] {
            switch InstanceLifecycle(rawValue: record.lifecycle) {
            case .importing, .creating:
                try? await remove(record.name, context: nil)
            case .importingContinuable:
                // Its move may continue into what the disks received (gnt_move_continue).
                try? database.update(record.name) { $0.lifecycle = InstanceLifecycle.importInterrupted.rawValue }
            case .importInterrupted, .ready, nil:
                break
            }
        }
        for name in importKeyStore.names() { try? importKeyStore.remove(name: name) }
    }

    /// The periodic sweep; returns what it removed.
    @discardableResult
    public func sweep(now: Double = Date().timeIntervalSince1970) async -> [String] {
        var removed: [String] = []
        for store in [keyStore, importKeyStore] {
            for name in store.names() {
                guard let certificate = try? store.certificate(name: name) else { continue }
                if Double(certificate.notAfter) < now {
                    try? store.remove(name: name)
                    removed.append("expired key \(name)")
                }
            }
        }
        let pending: Set<String> = [InstanceLifecycle.importing.rawValue, InstanceLifecycle.importingContinuable.rawValue,
                                    InstanceLifecycle.importInterrupted.rawValue]
        for record in (try? database.instances()) ?? [] where pending.contains(record.lifecycle) && now - record.ctime > config.pendingImportMaxAge
            && !activeImports.withLock({ $0.contains(record.name) }) {
            try? await remove(record.name, context: nil)
            removed.append("pending import \(record.name)")
        }
        return removed
    }

    func transferFolders() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: paths.importExport)) ?? []).map { paths.importExport + "/" + $0 }
    }
}
