import CoreMetrics
import Foundation
import Prometheus

/// The agent's metrics, served by `GET /metrics` in Prometheus' text format (docs/operations.md,
/// "Metrics"). Each agent owns one ``PrometheusCollectorRegistry`` and makes its metrics with
/// swift-metrics through a factory bound to that registry, never through the process-wide
/// `MetricsSystem`: several agents in one process (tests, the demo) keep their numbers apart.
///
/// Every label has a bounded set of values: routes are the router's templates
/// (`/2/instances/{name}`), methods and failure reasons closed sets, job kinds the agent's own
/// opcodes. Only the per-disk series name an instance (and a disk index), one series per disk moved.
public final class AgentMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    let factory: PrometheusMetricsFactory

    /// Prometheus' text exposition format, version 0.0.4.
    public static let contentType = "text/plain; version=0.0.4"

    /// The metric names, all prefixed `gnt_move_`, with their `# HELP` text.
    enum Name: String, CaseIterable {
        case requests = "gnt_move_rapi_requests_total"
        case jobs = "gnt_move_jobs_total"
        case transfersRunning = "gnt_move_transfers_running"
        case sentBytes = "gnt_move_disk_sent_bytes_total"
        case receivedBytes = "gnt_move_disk_received_bytes_total"
        case rate = "gnt_move_disk_rate_bytes_per_second"
        case transferFailures = "gnt_move_transfer_failures_total"
        case keys = "gnt_move_x509_keys"

        var help: String {
            switch self {
            case .requests: return "RAPI requests answered, by route template, method and HTTP status."
            case .jobs: return "Jobs ended, by opcode (kind) and outcome (success, error, canceled)."
            case .transfersRunning: return "Disk import and export daemons running now."
            case .sentBytes: return "Disk bytes sent by export daemons, per instance and disk index."
            case .receivedBytes: return "Disk bytes received by import daemons, per instance and disk index."
            case .rate: return "A disk transfer's current rate in bytes per second (0 once it ended)."
            case .transferFailures: return "Disk imports and exports that failed, by direction and reason."
            case .keys: return "Per-move X509 keys held, by key store (export: source keys; import: destination keys)."
            }
        }
    }

    /// Which end of a disk transfer this agent is.
    public enum Direction: String, CaseIterable, Sendable {
        case `import`, export
    }

    /// Why a disk transfer failed: a small closed set, from the daemon's `error_kind`.
    public enum FailureReason: String, CaseIterable, Sendable {
        /// The importer could not listen (its address, or every port of `dataPortRange`).
        case listen
        /// No authenticated peer in time, or the importer could not be reached.
        case connect
        /// The TLS handshake failed (a certificate that is not the pinned one, an expired one).
        case handshake
        /// A verdict on the data: a checksum, digest or magic that does not match, a protocol error.
        case integrity
        /// The disk at either end: unreadable source, full or too small destination, a journal.
        case storage
        /// The connection broke and did not come back.
        case link
        /// The job was canceled and its daemons stopped.
        case canceled
        /// Anything else (a daemon that did not start, did not listen in time, an unknown kind).
        case other

        /// The reason for a daemon's `error_kind` (``BlockStream/BlockStreamError/Kind``, or
        /// `tls-` and a TLS failure's kind).
        public init(errorKind: String?) {
            switch errorKind {
            case "listen": self = .listen
            case "connect", "timeout": self = .connect
            case "handshake", "tls-handshake": self = .handshake
            case "magic", "integrity", "protocolError", "compression": self = .integrity
            case "source", "destination", "destinationFull", "beyondDestination", "journal", "journalOfAnotherDestination": self = .storage
            case "truncated", "tls-truncated", "tls-transport", "tls-timeout": self = .link
            default: self = .other
            }
        }
    }

    public init() {
        registry = PrometheusCollectorRegistry()
        factory = PrometheusMetricsFactory(registry: registry)
        // The series a dashboard expects from the start, at zero.
        for direction in Direction.allCases {
            meter(.transfersRunning, [("direction", direction.rawValue)]).set(0)
            for reason in FailureReason.allCases {
                counter(.transferFailures, [("direction", direction.rawValue), ("reason", reason.rawValue)]).increment(by: 0)
            }
        }
    }

    private func counter(_ name: Name, _ labels: [(String, String)]) -> CoreMetrics.Counter {
        CoreMetrics.Counter(label: name.rawValue, dimensions: labels, factory: factory)
    }

    private func meter(_ name: Name, _ labels: [(String, String)]) -> CoreMetrics.Meter {
        CoreMetrics.Meter(label: name.rawValue, dimensions: labels, factory: factory)
    }

    // MARK: What the agent reports

    /// One RAPI request answered. `route` is the router's template, never the raw path.
    func requestAnswered(route: String, method: String, status: Int) {
        counter(.requests, [("route", route), ("method", method), ("status", String(status))]).increment()
    }

    /// A job ended. `kind` is its opcode (`OP_INSTANCE_SHUTDOWN`), `outcome` success, error or canceled.
    func jobEnded(kind: String, outcome: String) {
        counter(.jobs, [("kind", kind), ("outcome", outcome)]).increment()
    }

    func transfersStarted(_ direction: Direction, count: Int) {
        meter(.transfersRunning, [("direction", direction.rawValue)]).increment(by: Double(count))
    }

    func transferEnded(_ direction: Direction) {
        meter(.transfersRunning, [("direction", direction.rawValue)]).decrement(by: 1)
    }

    /// A disk daemon reported its progress through the disk, `bytes` (it last reported
    /// `previous`), and a rate in bytes per second. Returns the next call's `previous`.
    /// Progress that goes back (a connection that resumed from the journal, a warm import's next
    /// pass) adds nothing until it passes where it was: a daemon counts each byte of the disk once.
    func diskProgress(_ direction: Direction, instance: String, disk: Int, bytes: Int64, previous: Int64, rate: Double?) -> Int64 {
        let labels = [("instance", instance), ("disk", String(disk))]
        let delta = max(0, bytes - previous)
        if delta > 0 { counter(direction == .export ? .sentBytes : .receivedBytes, labels).increment(by: delta) }
        if let rate { meter(.rate, [("direction", direction.rawValue)] + labels).set(max(0, rate)) }
        return max(bytes, previous)
    }

    func transferFailed(_ direction: Direction, reason: FailureReason) {
        counter(.transferFailures, [("direction", direction.rawValue), ("reason", reason.rawValue)]).increment()
    }

    /// The keys a key store holds now (`export`: source keys; `import`: destination keys).
    func keysHeld(store: String, count: Int) {
        meter(.keys, [("store", store)]).set(Double(count))
    }

    // MARK: Exposition

    /// The text format, with a `# HELP` line before each metric's `# TYPE` line.
    public func render() -> String {
        var out = ""
        for line in registry.emitToString().split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix("# TYPE "), let name = line.split(separator: " ").dropFirst(2).first, let known = Name(rawValue: String(name)) {
                out += "# HELP \(known.rawValue) \(known.help)\n"
            }
            out += line
            out += "\n"
        }
        // `split` kept the text's last newline as an empty piece.
        return out.hasSuffix("\n\n") ? String(out.dropLast()) : out
    }
}
