import Foundation
import Subprocess
import Synchronization

/// A command the agent runs on its host (hypervisor start/stop/status, LVM, an OS script):
/// `/bin/sh -c TEMPLATE gnt-move ARGUMENT`, `%s` in the template replaced by `"$1"`, so the
/// argument (an instance name, a volume, a path) reaches the command as one word and never needs
/// quoting. Extra environment is merged into the agent's.
///
/// It runs asynchronously (swift-subprocess): nothing waits on the cooperative pool. Standard
/// output and error are collected together, the last ``outputLimit`` bytes kept. A command still
/// running after `timeout` is stopped with its whole process group (it runs in a session of its
/// own): SIGTERM, then SIGKILL after `killGrace`; the call then throws ``TimedOut``.
public struct HostCommand: Sendable, Equatable {
    public let template: String
    /// Seconds.
    public let timeout: Double
    /// Seconds between SIGTERM and SIGKILL once the timeout has passed.
    public let killGrace: Double

    /// The most output kept (its tail): enough for any error message, bounded for a chatty command.
    public static let outputLimit = 64 << 10

    public init(_ template: String, timeout: Double, killGrace: Double = 10) {
        self.template = template
        self.timeout = timeout
        self.killGrace = killGrace
    }

    /// How the command ended, when it ended by itself.
    public struct Outcome: Sendable, Equatable {
        /// The exit status, or nil when a signal ended it (``signal``).
        public let exitStatus: Int32?
        public let signal: Int32?
        /// Standard output and error as they came, at most the last ``HostCommand/outputLimit`` bytes.
        public let output: String
        public var succeeded: Bool { exitStatus == 0 }
    }

    /// The command did not finish within its timeout and was stopped.
    public struct TimedOut: Error, CustomStringConvertible, Sendable, Equatable {
        public let command: String
        public let argument: String
        public let timeout: Double
        /// What it printed before it was stopped (tail).
        public let output: String

        public var description: String {
            let tail = output.trimmingCharacters(in: .whitespacesAndNewlines)
            return "command '\(command)' for \(argument) did not finish within \(HostCommand.seconds(timeout)) s; stopped it"
                + (tail.isEmpty ? "" : " (output: \(tail.suffix(300)))")
        }
    }

    /// Runs the command; its output when it exits 0. A non-zero exit or a signal throws
    /// `AgentError.execution` with the status and the output's tail; a timeout throws ``TimedOut``.
    @discardableResult
    public func run(_ argument: String, environment: [String: String] = [:]) async throws -> String {
        let outcome = try await execute(argument, environment: environment)
        guard outcome.succeeded else {
            let how = outcome.exitStatus.map { "exit \($0)" } ?? "signal \(outcome.signal ?? 0)"
            throw AgentError.execution("command '\(template)' for \(argument) failed (\(how)): \(outcome.output.suffix(300))")
        }
        return outcome.output
    }

    /// Runs the command and reports how it ended. Throws only when it could not be started
    /// (`AgentError.execution`) or did not end within the timeout (``TimedOut``).
    public func execute(_ argument: String, environment: [String: String] = [:]) async throws -> Outcome {
        let script = template.replacingOccurrences(of: "%s", with: "\"$1\"")
        var overrides: [Environment.Key: String?] = [:]
        for (key, value) in environment {
            guard let key = Environment.Key(rawValue: key) else { continue }
            overrides[key] = value
        }
        var options = PlatformOptions()
        // A session of its own, so that the teardown reaches whatever the shell started.
        options.createSession = true
        options.teardownSequence = [.gracefulShutDown(toProcessGroup: true, allowedDurationToNextStep: Self.duration(killGrace))]
        let configuration = Configuration(executable: .path("/bin/sh"), arguments: Arguments(["-c", script, "gnt-move", argument]),
                                          environment: .inherit.updating(overrides), platformOptions: options)
        let collected = CommandRun(limit: Self.outputLimit)

        enum Finish: Sendable {
            case exited(TerminationStatus)
            case timedOut
        }
        let finish: Finish
        do {
            finish = try await withThrowingTaskGroup(of: Finish.self) { group in
                group.addTask {
                    let result = try await Subprocess.run(configuration, input: .none, output: .sequence, error: .combinedWithOutput) { execution in
                        collected.leader = execution.processIdentifier.value
                        do {
                            for try await buffer in execution.standardOutput {
                                buffer.withUnsafeBytes { collected.append($0) }
                            }
                        } catch {
                            // The output ended early (the process exited while a child it left
                            // behind holds the pipe, or the run was canceled): the exit status decides.
                        }
                    }
                    return .exited(result.terminationStatus)
                }
                group.addTask {
                    try await Task.sleep(for: Self.duration(timeout))
                    return .timedOut
                }
                // The first to finish decides; canceling the run makes Subprocess run the teardown
                // sequence, and leaving the group waits until the process has been reaped.
                let first = try await group.next()!
                group.cancelAll()
                return first
            }
        } catch let error as SubprocessError {
            throw AgentError.execution("command '\(template)' for \(argument) could not be started: \(error)")
        }
        switch finish {
        case .timedOut:
            // The shell is reaped; anything of its session that outlived SIGTERM (a child that
            // ignores it while the shell exited) is killed too. The group id is the shell's pid.
            if let pid = collected.leader { kill(-pid, SIGKILL) }
            throw TimedOut(command: template, argument: argument, timeout: timeout, output: collected.text)
        case .exited(.exited(let code)):
            return Outcome(exitStatus: code, signal: nil, output: collected.text)
        case .exited(.signaled(let signal)):
            return Outcome(exitStatus: nil, signal: signal, output: collected.text)
        }
    }

    static func duration(_ seconds: Double) -> Duration { .milliseconds(Int64((max(0, seconds) * 1000).rounded())) }

    /// `30`, or `0.5`: seconds as an operator wrote them.
    static func seconds(_ value: Double) -> String {
        value == value.rounded() && abs(value) < 1e15 ? String(Int64(value)) : String(value)
    }
}

/// What the reading task learns of a running command: its pid (the leader of its process group)
/// and the last `limit` bytes of its output.
private final class CommandRun: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    private let limit: Int
    private let pid = Mutex<pid_t?>(nil)

    var leader: pid_t? {
        get { pid.withLock { $0 } }
        set { pid.withLock { $0 = newValue } }
    }

    init(limit: Int) { self.limit = limit }

    func append(_ chunk: UnsafeRawBufferPointer) {
        bytes.withLock { bytes in
            bytes.append(contentsOf: chunk)
            // Trimmed only once twice the limit has piled up: appends stay amortized O(1).
            if bytes.count > 2 * limit { bytes.removeFirst(bytes.count - limit) }
        }
    }

    var text: String { bytes.withLock { String(decoding: $0.suffix(limit), as: UTF8.self) } }
}
