import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// The state machine's table, as the store enforces it on a real SQLite database.
final class MoveStateMachineTests: XCTestCase {
    func newMove(_ store: MoveStore) throws -> MoveRecord {
        let endpoint = ClusterEndpoint(host: "127.0.0.1", port: 5080, caFile: "/nonexistent")
        return try store.create(MoveRequest(source: endpoint, destination: endpoint, instance: "vm1"))
    }

    /// The shortest way from `planned` to `state` through allowed transitions.
    func path(to state: MoveState) -> [MoveState] {
        var paths: [MoveState: [MoveState]] = [.planned: []]
        var queue: [MoveState] = [.planned]
        while !queue.isEmpty {
            let current = queue.removeFirst()
            for next in current.successors.sorted(by: { $0.rawValue < $1.rawValue }) where paths[next] == nil {
                paths[next] = (paths[current] ?? []) + [next]
                queue.append(next)
            }
        }
        return paths[state] ?? []
    }

    func testEveryStateIsReachableAndDoneIsTheEnd() {
        for state in MoveState.allCases where state != .planned {
            XCTAssertFalse(path(to: state).isEmpty, "\(state) cannot be reached from planned")
        }
        XCTAssertEqual(MoveState.done.successors, [])
        XCTAssertEqual(MoveState.cleaned.successors, [.planned], "only a retry leaves cleaned")
        for state in MoveState.allCases where ![.done, .failed, .cleaned].contains(state) {
            XCTAssertTrue(state.successors.contains(.failed), "\(state) can fail")
        }
    }

    func testTheStoreRefusesEveryTransitionTheTableDoesNotList() throws {
        let folder = TemporaryDirectory("states")
        let store = try MoveStore(directory: folder.file("state"))
        var refused = 0
        for from in MoveState.allCases {
            for to in MoveState.allCases where !from.canMove(to: to) {
                let move = try newMove(store)
                for step in path(to: from) {
                    if step == .planned { _ = try store.restart(move.id, detail: "retry") } else { _ = try store.record(move.id, state: step, detail: "to \(step)") }
                }
                let before = try XCTUnwrap(try store.move(move.id))
                XCTAssertEqual(before.state, from)
                XCTAssertThrowsError(try store.record(move.id, state: to, detail: "not allowed") { $0.exportJob = 99 }, "\(from) → \(to)") { error in
                    XCTAssertEqual((error as? CoordinatorError)?.reason, .state)
                    XCTAssertTrue("\(error)".contains("cannot go from \(from.rawValue) to \(to.rawValue)"), "\(error)")
                }
                XCTAssertEqual(try store.move(move.id), before, "a refused transition records nothing")
                if to == .planned {
                    XCTAssertThrowsError(try store.restart(move.id, detail: "not allowed"), "restart from \(from)")
                }
                refused += 1
            }
        }
        XCTAssertGreaterThan(refused, 80)
    }

    func testEveryAllowedTransitionIsRecorded() throws {
        let folder = TemporaryDirectory("states")
        let store = try MoveStore(directory: folder.file("state"))
        for from in MoveState.allCases {
            for to in from.successors {
                let move = try newMove(store)
                for step in path(to: from) {
                    if step == .planned { _ = try store.restart(move.id, detail: "retry") } else { _ = try store.record(move.id, state: step, detail: "to \(step)") }
                }
                let after = to == .planned ? try store.restart(move.id, detail: "retry") : try store.record(move.id, state: to, detail: "allowed")
                XCTAssertEqual(after.state, to, "\(from) → \(to)")
            }
        }
    }

    func testOnlyFailuresThatMayPassAreRetried() {
        let retried = Set(FailureReason.allCases.filter(\.isRetried))
        XCTAssertEqual(retried, [.jobFailed, .rapi, .connection, .exportFailed, .destinationFailed])
        for reason in [FailureReason.refused, .badRequest, .credentials, .timeout, .aborted, .instanceNotFound] {
            XCTAssertFalse(reason.isRetried, "\(reason)")
        }
        // Ganeti's refusals, whatever their ecode, are refused; only temp_insufficient_resources
        // and execution failures may pass.
        for ecode in ["wrong_input", "already_exists", "unknown_entity", "insufficient_resources", "wrong_state",
                      "resource_not_unique", "resolver_error", "environment_error"] {
            XCTAssertTrue(RAPIJobError(jobId: 1, errorClass: "OpPrereqError", message: "m", ecode: ecode).isRefusal, ecode)
        }
        XCTAssertFalse(RAPIJobError(jobId: 1, errorClass: "OpPrereqError", message: "m", ecode: "temp_insufficient_resources").isRefusal)
        XCTAssertFalse(RAPIJobError(jobId: 1, errorClass: "OpExecError", message: "transfer broke", ecode: nil).isRefusal)
        XCTAssertTrue(RAPIError(status: 400, message: "bad parameter").isRefusal)
        XCTAssertFalse(RAPIError(status: 502, message: "bad gateway").isRefusal)
    }

    func testFactsKeepTheRelayedMaterialExactly() throws {
        // Signed tuples are verified over Python's rendering of each field: 40123 must stay an
        // integer and 1.0 must stay 1.0 through the store.
        let remote = try JSONValue(parsing: #"{"disks": [["198.51.100.12", 40123, "magic", "hmac", "salt"]], "x509_ca": "PEM", "weight": 1.0}"#)
        let folder = TemporaryDirectory("facts")
        let store = try MoveStore(directory: folder.file("state"))
        let move = try newMove(store)
        _ = try store.record(move.id, state: .sourcePrepared, detail: "prepared") { $0.prepareJob = 7; $0.sourceWasRunning = true }
        _ = try store.record(move.id, state: .destinationCreated, detail: "created") { $0.createJob = 8 }
        _ = try store.record(move.id, state: .destinationListening, detail: "listening") { $0.remoteImport = remote }
        let stored = try XCTUnwrap(try MoveStore(directory: folder.file("state")).move(move.id))
        XCTAssertEqual(stored.facts.remoteImport?.serialized, remote.serialized)
        XCTAssertEqual(stored.facts.jobs, ["prepare_job": 7, "create_job": 8])
        XCTAssertEqual(stored.facts.sourceWasRunning, true)
        XCTAssertNil(stored.facts.exportJob)
    }
}
