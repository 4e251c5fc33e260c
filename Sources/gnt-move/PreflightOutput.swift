import ArgumentParser
import Foundation
import MoveCoordinator

/// What `move --preflight`, and `run` and `batch` with `"preflight": true`, print: per move, the
/// plan, then each check with its result; JSON lines (`preflight-plan`, `preflight`) or a
/// readable block.
struct PreflightOutput {
    let json: Bool
    /// Only failed checks (and nothing else): `batch --quiet`.
    var failuresOnly = false

    func print(_ report: Coordinator.PreflightReport) {
        if json {
            for event in report.events { Console.json(event) }
            return
        }
        if !failuresOnly, let plan = report.plan {
            Swift.print("\(report.instance): plan")
            for line in plan.lines { Swift.print("    \(line)") }
        }
        for check in report.checks where !failuresOnly || !check.passed {
            Swift.print("\(report.instance): \(check.passed ? (check.warning ? "WARN" : "ok  ") : "FAIL") \(check.name): \(check.detail)")
        }
    }

    /// Checks every move (`parallel` at a time), prints each report in request order, and
    /// fails (exit 1) when a check failed.
    func run(_ coordinator: Coordinator, _ requests: [MoveRequest], parallel: Int) async throws {
        let reports = await coordinator.preflightAll(requests, parallel: parallel)
        for report in reports { print(report) }
        if reports.contains(where: { !$0.passed }) { throw ExitCode(1) }
    }
}
