import ClusterAgent
import Foundation
import MoveTrust
import TestSupport
import XCTest

/// ``HostCommand``: the hypervisor, storage and OS commands, run for real through `/bin/sh`.
final class HostCommandTests: XCTestCase {
    func testSuccessReturnsStandardOutputAndErrorTogether() async throws {
        let output = try await HostCommand("echo out %s; echo err >&2", timeout: 30).run("vm1")
        XCTAssertEqual(output, "out vm1\nerr\n")
    }

    func testEnvironmentIsMergedIntoTheAgents() async throws {
        // PATH comes from the agent's environment (sh finds printenv); the extra variable is added.
        let output = try await HostCommand("printenv GNT_MOVE_TEST_VARIABLE", timeout: 30).run("vm1", environment: ["GNT_MOVE_TEST_VARIABLE": "a b"])
        XCTAssertEqual(output, "a b\n")
    }

    func testFailureThrowsExitStatusAndOutputTail() async throws {
        let command = HostCommand("echo first line; echo disk %s is busy >&2; exit 3", timeout: 30)
        do {
            try await command.run("vm1")
            XCTFail("a failing command returned")
        } catch let error as AgentError {
            XCTAssertEqual(error.errorClass, "OpExecError")
            XCTAssertEqual(error.message, "command 'echo first line; echo disk %s is busy >&2; exit 3' for vm1 failed (exit 3): first line\ndisk vm1 is busy\n")
        }
        let outcome = try await command.execute("vm1")
        XCTAssertEqual(outcome.exitStatus, 3)
        XCTAssertFalse(outcome.succeeded)
    }

    func testTheArgumentIsPassedLiterally() async throws {
        let folder = TemporaryDirectory("host-command")
        let marker = folder.file("injected")
        let name = "vm 1 'single' \"double\" $(touch \(marker)) `touch \(marker)` ; touch \(marker) * $HOME"
        let output = try await HostCommand("echo %s", timeout: 30).run(name)
        XCTAssertEqual(output, name + "\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: marker), "nothing in the argument ran")
    }

    func testOutputIsBoundedToItsTail() async throws {
        let output = try await HostCommand("head -c 200000 /dev/zero | tr '\\0' a; echo END", timeout: 30).run("x")
        XCTAssertEqual(output.utf8.count, HostCommand.outputLimit)
        XCTAssertTrue(output.hasSuffix("aaaEND\n"))
    }

    func testCommandPastItsTimeoutIsStoppedAndReported() async throws {
        let folder = TemporaryDirectory("host-command")
        let pidFile = folder.file("pid")
        let template = "echo $$ > \(pidFile); exec sleep 30"
        let started = Date()
        do {
            try await HostCommand(template, timeout: 1).run("vm1")
            XCTFail("a command past its timeout returned")
        } catch let error as HostCommand.TimedOut {
            XCTAssertEqual("\(error)", "command '\(template)' for vm1 did not finish within 1 s; stopped it")
            XCTAssertEqual(JobRunner.encode(error), .array([.string("OpExecError"), .array([.string("\(error)"), .string("internal_error")])]))
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "the call returned soon after the timeout")
        let pid = try XCTUnwrap(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(pid, 0), -1, "process \(pid) is gone")
        XCTAssertEqual(errno, ESRCH)
    }

    /// The command runs in a session of its own: the teardown reaches what the shell started.
    func testTimeoutStopsWhatTheShellStarted() async throws {
        let folder = TemporaryDirectory("host-command")
        let pidFile = folder.file("pids")
        let started = Date()
        do {
            try await HostCommand("echo $$ > \(pidFile); sleep 30 & echo $! >> \(pidFile); wait", timeout: 1).run("vm1")
            XCTFail("a command past its timeout returned")
        } catch is HostCommand.TimedOut {}
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        let pids = try String(contentsOfFile: pidFile, encoding: .utf8).split(separator: "\n").compactMap { Int32($0) }
        XCTAssertEqual(pids.count, 2)
        XCTAssertEqual(kill(pids[0], 0), -1, "the shell is gone")
        XCTAssertEqual(errno, ESRCH)
        XCTAssertTrue(Self.isGone(pids[1]), "the shell's child \(pids[1]) was stopped too")
    }

    /// A command that ignores SIGTERM is killed once the grace period has passed.
    func testCommandIgnoringSIGTERMIsKilledAfterTheGracePeriod() async throws {
        let folder = TemporaryDirectory("host-command")
        let pidFile = folder.file("pid")
        let started = Date()
        do {
            try await HostCommand("trap '' TERM; echo $$ > \(pidFile); sleep 30", timeout: 1, killGrace: 1).run("vm1")
            XCTFail("a command past its timeout returned")
        } catch is HostCommand.TimedOut {}
        let elapsed = Date().timeIntervalSince(started)
        XCTAssertGreaterThan(elapsed, 1.5, "SIGTERM alone did not stop it")
        XCTAssertLessThan(elapsed, 6)
        let pid = try XCTUnwrap(Int32(String(contentsOfFile: pidFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(pid, 0), -1, "process \(pid) is gone")
        XCTAssertEqual(errno, ESRCH)
    }

    /// The timeout covers the process, not only its output.
    func testCommandThatClosesItsOutputStillTimesOut() async throws {
        let started = Date()
        do {
            try await HostCommand("exec >/dev/null 2>&1; sleep 30", timeout: 1).run("vm1")
            XCTFail("a command past its timeout returned")
        } catch is HostCommand.TimedOut {}
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
    }

    /// A start command may leave a daemon behind that still holds the output pipe: the call ends
    /// when the shell exits, and the daemon is left alone.
    func testDaemonLeftBehindDoesNotHoldTheCall() async throws {
        let started = Date()
        let output = try await HostCommand("sleep 30 & echo $!", timeout: 20).run("vm1")
        XCTAssertLessThan(Date().timeIntervalSince(started), 5)
        let daemon = try XCTUnwrap(Int32(output.trimmingCharacters(in: .whitespacesAndNewlines)))
        XCTAssertEqual(kill(daemon, 0), 0, "the daemon still runs")
        kill(daemon, SIGKILL)
    }

    func testConcurrentCommandsDoNotBlockEachOther() async throws {
        let started = Date()
        try await withThrowingTaskGroup(of: String.self) { group in
            for index in 0..<8 { group.addTask { try await HostCommand("sleep 1; echo %s", timeout: 30).run("vm\(index)") } }
            var outputs: [String] = []
            for try await output in group { outputs.append(output) }
            XCTAssertEqual(outputs.sorted(), (0..<8).map { "vm\($0)\n" }.sorted())
        }
        XCTAssertLessThan(Date().timeIntervalSince(started), 5, "eight 1 s commands ran side by side")
    }

    func testStatusCommandTellsWhetherTheInstanceRuns() async throws {
        let folder = TemporaryDirectory("host-command")
        let marks = folder.file("marks")
        try FileManager.default.createDirectory(atPath: marks, withIntermediateDirectories: true)
        let driver = CommandHypervisor(start: HostCommand("touch \(marks)/%s", timeout: 30), stop: HostCommand("rm -f \(marks)/%s", timeout: 30),
                                       status: HostCommand("test -e \(marks)/%s", timeout: 30))
        // The status command decides, whatever the agent recorded.
        func vm1(up: Bool) -> InstanceRecord {
            InstanceRecord(spec: InstanceSpec(name: "vm 1", diskTemplate: "file", disks: [], nics: [], os: nil, hypervisor: "kvm"), diskPaths: [],
                           adminState: up ? "up" : "down")
        }
        let off = try await driver.isRunning(vm1(up: true))
        XCTAssertFalse(off)
        try await driver.start(vm1(up: false))
        let on = try await driver.isRunning(vm1(up: false))
        XCTAssertTrue(on)
        try await driver.stop(vm1(up: true))
        let offAgain = try await driver.isRunning(vm1(up: true))
        XCTAssertFalse(offAgain)

        // A status command that does not answer is not "off": the driver cannot tell.
        let hanging = CommandHypervisor(start: HostCommand("true", timeout: 30), stop: HostCommand("true", timeout: 30),
                                        status: HostCommand("sleep 30", timeout: 1))
        do {
            _ = try await hanging.isRunning(InstanceRecord(spec: InstanceSpec(name: "vm1", diskTemplate: "file", disks: [], nics: [], os: nil, hypervisor: "kvm"),
                                                           diskPaths: [], adminState: "down"))
            XCTFail("a status command past its timeout answered")
        } catch let error as HostCommand.TimedOut {
            XCTAssertEqual("\(error)", "command 'sleep 30' for vm1 did not finish within 1 s; stopped it")
        }
    }

    /// Gone, or a zombie nobody reaps (a process whose parent died is reaped by PID 1, and PID 1
    /// of some sandboxes does not reap): either way it no longer runs.
    static func isGone(_ pid: Int32) -> Bool {
        if kill(pid, 0) == -1 && errno == ESRCH { return true }
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return true }
        return stat[stat.index(close, offsetBy: 2)] == "Z"
    }
}
