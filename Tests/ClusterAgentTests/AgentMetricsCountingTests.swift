@testable import ClusterAgent
import XCTest

/// How ``AgentMetrics`` turns a daemon's progress reports into counters, without a transfer:
/// progress that goes back is not counted twice, and each agent's registry is its own.
final class AgentMetricsCountingTests: XCTestCase {
    func value(_ metrics: AgentMetrics, _ prefix: String) -> Double? {
        metrics.render().split(separator: "\n").first { $0.hasPrefix(prefix) }.flatMap { Double(String($0.split(separator: " ").last ?? "")) }
    }

    func testProgressThatGoesBackIsNotCountedAgain() {
        let metrics = AgentMetrics()
        var previous: Int64 = 0
        // 10, 30, a resume that rewinds to 25, 40, then a next pass from 0 to 35.
        for bytes: Int64 in [10, 30, 25, 40, 0, 35] {
            previous = metrics.diskProgress(.import, instance: "vm1", disk: 0, bytes: bytes, previous: previous, rate: 1)
        }
        XCTAssertEqual(previous, 40)
        XCTAssertEqual(value(metrics, #"gnt_move_disk_received_bytes_total{instance="vm1",disk="0"}"#), 40, metrics.render())
        XCTAssertNil(value(metrics, "gnt_move_disk_sent_bytes_total"), "nothing sent")
        // A daemon that continues at byte 40 of the disk (its resume offset) adds only what follows.
        _ = metrics.diskProgress(.import, instance: "vm1", disk: 0, bytes: 48, previous: 40, rate: 0)
        XCTAssertEqual(value(metrics, #"gnt_move_disk_received_bytes_total{instance="vm1",disk="0"}"#), 48)
    }

    func testEachAgentCountsInItsOwnRegistry() {
        let first = AgentMetrics(), second = AgentMetrics()
        first.jobEnded(kind: "OP_INSTANCE_SHUTDOWN", outcome: "success")
        first.jobEnded(kind: "OP_INSTANCE_SHUTDOWN", outcome: "success")
        second.jobEnded(kind: "OP_INSTANCE_SHUTDOWN", outcome: "error")
        XCTAssertEqual(value(first, #"gnt_move_jobs_total{kind="OP_INSTANCE_SHUTDOWN",outcome="success"}"#), 2, first.render())
        XCTAssertNil(value(first, #"gnt_move_jobs_total{kind="OP_INSTANCE_SHUTDOWN",outcome="error"}"#), first.render())
        XCTAssertEqual(value(second, #"gnt_move_jobs_total{kind="OP_INSTANCE_SHUTDOWN",outcome="error"}"#), 1, second.render())
        XCTAssertNil(value(second, #"gnt_move_jobs_total{kind="OP_INSTANCE_SHUTDOWN",outcome="success"}"#), second.render())
    }

    func testFailureReasonsAreAClosedSet() {
        XCTAssertEqual(AgentMetrics.FailureReason(errorKind: "listen"), .listen)
        XCTAssertEqual(AgentMetrics.FailureReason(errorKind: "tls-handshake"), .handshake)
        XCTAssertEqual(AgentMetrics.FailureReason(errorKind: "tls-truncated"), .link)
        XCTAssertEqual(AgentMetrics.FailureReason(errorKind: "integrity"), .integrity)
        XCTAssertEqual(AgentMetrics.FailureReason(errorKind: "destinationFull"), .storage)
        XCTAssertEqual(AgentMetrics.FailureReason(errorKind: "anything a newer daemon writes"), .other)
        XCTAssertEqual(AgentMetrics.FailureReason(errorKind: nil), .other)
    }
}
