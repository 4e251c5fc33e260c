import Foundation
import MoveTrust

/// Watches a move's disk daemons and turns their status files into Ganeti's job-log messages
/// and the agent's transfer metrics (running daemons, bytes and rate per disk, failures).
struct TransferMonitor {
    let context: JobContext
    let daemons: [DiskTransferProcess]
    /// Export daemons send, import daemons receive.
    let direction: AgentMetrics.Direction
    let metrics: AgentMetrics
    /// The instance whose disks these are (the per-disk metrics' label).
    let instance: String
    static let progressInterval = 5.0
    /// How often the per-disk metrics are brought up to date from the status files.
    static let metricsInterval = 1.0

    /// The job log's words for the direction: `sending`, `sent`, `send`, or the import's.
    var words: (ing: String, past: String, verb: String) {
        direction == .export ? ("sending", "sent", "send") : ("receiving", "received", "receive")
    }

    /// Waits until every daemon has written `listen_port`; fails after `timeout`.
    func waitListening(timeout: Double) async throws -> [Int] {
        let deadline = Date().addingTimeInterval(timeout)
        while true {
            let ports = daemons.map { $0.status?.listen_port }
            if ports.allSatisfy({ $0 != nil }) { return ports.compactMap { $0 } }
            if let failed = daemons.first(where: { $0.failure != nil }) {
                metrics.transferFailed(direction, reason: AgentMetrics.FailureReason(errorKind: failed.status?.error_kind))
                throw AgentError.execution("Disk \(failed.index) failed to listen: \(failed.failure ?? "")")
            }
            guard Date() < deadline else {
                metrics.transferFailed(direction, reason: .listen)
                throw AgentError.execution("the import daemons did not listen within \(Int(timeout)) s")
            }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// Follows the daemons until all have exited; returns per-disk success. A canceled job
    /// stops them.
    func follow() async -> [Bool] {
        // Running transfers: each daemon counts until it is seen to have exited.
        var ended = Set<Int>()
        metrics.transfersStarted(direction, count: daemons.count)
        var reported: [Int: Int64] = [:]
        var lastMetrics = Date.distantPast
        func updateMetrics(final: Bool) {
            for daemon in daemons {
                let running = daemon.isRunning
                if !running && !ended.contains(daemon.index) {
                    ended.insert(daemon.index)
                    metrics.transferEnded(direction)
                }
                guard let status = daemon.status else { continue }
                let bytes = status.progress_bytes ?? Int64(status.progress_mbytes ?? 0) << 20
                let rate = running && !final ? (status.progress_throughput ?? 0) * 1_048_576 : 0
                // A daemon that continues a transfer starts where the last one stopped.
                reported[daemon.index] = metrics.diskProgress(direction, instance: instance, disk: daemon.index, bytes: bytes,
                                                              previous: reported[daemon.index] ?? status.resume_offset ?? 0, rate: rate)
            }
        }
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
            if Date().timeIntervalSince(lastMetrics) >= Self.metricsInterval {
                lastMetrics = Date()
                updateMetrics(final: false)
            }
            reportResumes()
            for daemon in daemons where !announced.contains(daemon.index) && daemon.status?.connected == true {
                announced.insert(daemon.index)
                context.log("Disk \(daemon.index) is now \(words.ing) data")
            }
            // A daemon rewrites its status at most every 5 s; report each new one, at most every 5 s.
            if Date().timeIntervalSince(lastProgress) >= Self.progressInterval {
                for daemon in daemons where daemon.isRunning {
                    if let status = daemon.status, let mbytes = status.progress_mbytes, status.connected == true,
                       status.mtime != seen[daemon.index], status.progress_throughput != nil {
                        seen[daemon.index] = status.mtime
                        lastProgress = Date()
                        context.log("Disk \(daemon.index) \(words.past) \(ProgressText.format(mebibytes: mbytes, throughput: status.progress_throughput, percent: status.progress_percent, eta: status.progress_eta))")
                    }
                }
            }
            try? await Task.sleep(nanoseconds: 100_000_000)
        }
        reportResumes()
        updateMetrics(final: true)
        return daemons.map { daemon in
            if let failure = daemon.failure {
                metrics.transferFailed(direction, reason: context.isCanceled ? .canceled : AgentMetrics.FailureReason(errorKind: daemon.status?.error_kind))
                let recent = (daemon.status?.recent_output ?? []).suffix(3).joined(separator: "; ")
                context.log("Disk \(daemon.index) failed to \(words.verb) data: \(failure) (recent output: \(recent))")
                return false
            }
            let digest = daemon.status?.digest.map { ", digest \($0)" } ?? ""
            let wire = daemon.status?.wire_bytes.map { ", \($0) bytes on the wire" } ?? ""
            let changed = daemon.status?.changed_bytes.map { ", \($0) bytes changed" } ?? ""
            context.log("Disk \(daemon.index) finished \(words.ing) data\(wire)\(changed)\(digest)")
            return true
        }
    }
}
