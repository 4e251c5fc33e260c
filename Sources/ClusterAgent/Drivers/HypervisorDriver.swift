import Foundation

/// Starts and stops instances. `fake` only records the state (tests, file-only hosts);
/// `command` runs the configured commands with `%s` replaced by the instance name (e.g. virsh).
public protocol HypervisorDriver: Sendable {
    func start(_ instance: String) async throws
    func stop(_ instance: String) async throws
    /// Whether the instance runs; `recorded` is what the agent's state says. Throws when the
    /// driver cannot tell (its status command timed out or could not be started).
    func isRunning(_ instance: String, recorded: Bool) async throws -> Bool
}

public struct FakeHypervisor: HypervisorDriver {
    public init() {}
    public func start(_ instance: String) async throws {}
    public func stop(_ instance: String) async throws {}
    public func isRunning(_ instance: String, recorded: Bool) async throws -> Bool { recorded }
}

/// The configured start, stop and status commands (``HostCommand``), each with its timeout. The
/// status command exits 0 while the instance runs and non-zero otherwise.
public struct CommandHypervisor: HypervisorDriver {
    let startCommand: HostCommand
    let stopCommand: HostCommand
    let statusCommand: HostCommand?

    public init(start: HostCommand, stop: HostCommand, status: HostCommand?) {
        startCommand = start
        stopCommand = stop
        statusCommand = status
    }

    public func start(_ instance: String) async throws { try await startCommand.run(instance) }
    public func stop(_ instance: String) async throws { try await stopCommand.run(instance) }
    public func isRunning(_ instance: String, recorded: Bool) async throws -> Bool {
        guard let statusCommand else { return recorded }
        let outcome = try await statusCommand.execute(instance)
        if let signal = outcome.signal {
            throw AgentError.execution("command '\(statusCommand.template)' for \(instance) was ended by signal \(signal); the state of \(instance) is unknown")
        }
        return outcome.succeeded
    }
}
