import Foundation
import MoveTrust

/// Watches a move's disk daemons and turns their status files into Ganeti's job-log messages.
struct TransferMonitor {
    let context: JobContext
    let daemons: [DiskTransferProcess]
    /// `sending` or `receiving`.
    let direction: String
    static let progressInterval = 5.0

    /// Waits until every daemon has written `listen_port`; fails after `timeout`.
    func waitListening(timeout: Double) async throws -> [Int] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let ports = daemons.map { $0.status?.listen_port }
            if ports.allSatisfy({ $0 != nil }) { return ports.compactMap { $0 } }
            if let failed = daemons.first(where: { $0.failure != nil }) {
                throw AgentError.execution("Disk \(failed.index) failed to listen: \(failed.failure ?? "")")
            }
            guard Date() < deadline else { throw AgentError.execution("the import daemons did not listen within \(Int(timeout)) s") }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// Follows the daemons until all have exited; returns per-disk success. A canceled job
    /// stops them.
    func follow() async -> [Bool] {
        var announced = Set<Int>()
        var lastProgress = Date()
        var seen: [Int: Double] = [:]
        var resumedAt: [Int: Int64] = [:]
        // A gnt-move/1 transfer whose connection broke continues from the importer's journal.
        func reportResumes() {
            for daemon in daemons {
                guard let offset = daemon.status?.resume_offset, offset > 0, resumedAt[daemon.index] != offset else { continue }
                resumedAt[daemon.index] = offset
                let total = daemon.expectedSize.map { " of \($0)" } ?? ""
                context.log("Disk \(daemon.index) continues at byte \(offset)\(total) after a broken connection; what arrived before is kept")
            }
        }
        while daemons.contains(where: { $0.isRunning }) {
            if context.isCanceled { daemons.forEach { $0.kill() } }
            reportResumes()
            for daemon in daemons where !announced.contains(daemon.index) && daemon.status?.connected == true {
                announced.insert(daemon.index)
                context.log("Disk \(daemon.index) is now \(direction) data")
            }
            // A daemon rewrites its status at most every 5 s; report each new one, at most every 5 s.
            if Date().timeIntervalSince(lastProgress) >= Self.progressInterval {
                for daemon in daemons where daemon.isRunning {
                    if let status = daemon.status, let mbytes = status.progress_mbytes, status.connected == true,
                       status.mtime != seen[daemon.index], status.progress_throughput != nil {
                        seen[daemon.index] = status.mtime
                        lastProgress = Date()
                        let verb = direction == "sending" ? "sent" : "received"
                        context.log("Disk \(daemon.index) \(verb) \(ProgressText.format(mebibytes: mbytes, throughput: status.progress_throughput, percent: status.progress_percent, eta: status.progress_eta))")
                    }
                }
            }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        reportResumes()
        return daemons.map { daemon in
            if let failure = daemon.failure {
                let recent = (daemon.status?.recent_output ?? []).suffix(3).joined(separator: "; ")
                context.log("Disk \(daemon.index) failed to \(direction == "sending" ? "send" : "receive") data: \(failure) (recent output: \(recent))")
                return false
            }
            let digest = daemon.status?.digest.map { ", digest \($0)" } ?? ""
            let wire = daemon.status?.wire_bytes.map { ", \($0) bytes on the wire" } ?? ""
            let changed = daemon.status?.changed_bytes.map { ", \($0) bytes changed" } ?? ""
            context.log("Disk \(daemon.index) finished \(direction) data\(wire)\(changed)\(digest)")
            return true
        }
    }
}
