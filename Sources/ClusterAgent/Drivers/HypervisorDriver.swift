import Foundation
import MoveTrust

/// Starts and stops instances. `fake` only records the state (tests, file-only hosts);
/// `command` runs the configured commands with `%s` replaced by the instance name (e.g. virsh);
/// `libvirt` keeps each instance as a libvirt domain (``LibvirtHypervisor``).
///
/// Every call names the instance's record: a driver that holds something of its own for an
/// instance (a libvirt domain) finds it by the record's UUID, never by name alone, so that it
/// never acts on something of the same name that is not the instance's.
public protocol HypervisorDriver: Sendable {
    func start(_ instance: InstanceRecord) async throws
    /// Stops the instance; returns once the driver knows it is off, or throws.
    func stop(_ instance: InstanceRecord) async throws
    /// Whether the instance runs. Throws when the driver cannot tell (its status command timed
    /// out or could not be started).
    func isRunning(_ instance: InstanceRecord) async throws -> Bool
    /// Throws when the hypervisor cannot take the instance: it already holds something of the
    /// name that is not the agent's, or the spec cannot be given to it (a NIC it cannot attach).
    /// Checked before an instance is created, and in a dry run.
    func checkPlacement(_ spec: InstanceSpec) async throws
    /// Registers a complete instance with the hypervisor (its disks are written): libvirt defines
    /// its domain. Called once, before the instance is first started. Returns what it registered,
    /// for the job log (nil: nothing).
    func define(_ instance: InstanceRecord) async throws -> String?
    /// Removes what ``define(_:)`` or an adoption registered, if it is the instance's own; the
    /// instance is off.
    func undefine(_ instance: InstanceRecord) async throws
}

extension HypervisorDriver {
    public func checkPlacement(_ spec: InstanceSpec) async throws {}
    public func define(_ instance: InstanceRecord) async throws -> String? { nil }
    public func undefine(_ instance: InstanceRecord) async throws {}
}

public struct FakeHypervisor: HypervisorDriver {
    public init() {}
    public func start(_ instance: InstanceRecord) async throws {}
    public func stop(_ instance: InstanceRecord) async throws {}
    /// What the agent's state says: up and complete.
    public func isRunning(_ instance: InstanceRecord) async throws -> Bool { instance.adminState == "up" && instance.lifecycle == "ready" }
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

    public func start(_ instance: InstanceRecord) async throws { try await startCommand.run(instance.name) }
    public func stop(_ instance: InstanceRecord) async throws { try await stopCommand.run(instance.name) }
    public func isRunning(_ instance: InstanceRecord) async throws -> Bool {
        guard let statusCommand else { return try await FakeHypervisor().isRunning(instance) }
        let outcome = try await statusCommand.execute(instance.name)
        if let signal = outcome.signal {
            throw AgentError.execution("command '\(statusCommand.template)' for \(instance.name) was ended by signal \(signal); the state of \(instance.name) is unknown")
        }
        return outcome.succeeded
    }
}
