import Foundation
import MoveTrust

/// Instances as libvirt domains, through `virsh` on the configured connection
/// (`LIBVIRT_DEFAULT_URI`). Every domain is addressed by the instance record's UUID: the agent
/// defines domains with that UUID, and an adopted domain's record takes the domain's, so a
/// domain of the same name that is not the instance's is never started, stopped or undefined.
///
/// A stop is an ACPI shutdown (`virsh shutdown`) followed until the domain is shut off. A guest
/// that ignores it is forced off (`virsh destroy`) only when the operator allowed it
/// (`forceStopAfter`); otherwise the stop fails after `stopTimeout` and nothing reads the disks.
public struct LibvirtHypervisor: HypervisorDriver {
    let uri: String
    let domainType: AgentConfig.LibvirtDomainType
    let forceStopAfter: Double?
    let stopTimeout: Double
    let commandTimeout: Double
    let statusTimeout: Double
    /// Where domain definitions are written for `virsh define`.
    let scratchFolder: String

    public init(config: AgentConfig, scratchFolder: String) {
        uri = config.effectiveLibvirtURI
        domainType = config.libvirtDomainType ?? .kvm
        forceStopAfter = config.forceStopAfter
        stopTimeout = config.effectiveStopCommandTimeout
        commandTimeout = config.effectiveStartCommandTimeout
        statusTimeout = config.effectiveStatusCommandTimeout
        self.scratchFolder = scratchFolder
    }

    /// A domain's state as `virsh domstate` names it; nil when there is no such domain.
    func state(_ domain: String) async throws -> String? {
        let outcome = try await virsh("domstate %s", domain, timeout: statusTimeout)
        if outcome.succeeded { return outcome.output.trimmingCharacters(in: .whitespacesAndNewlines) }
        if Self.isNoSuchDomain(outcome.output) { return nil }
        throw failure("domstate", domain, outcome)
    }

    public func isRunning(_ instance: InstanceRecord) async throws -> Bool {
        // Paused, in shutdown, crashed (with its process kept): QEMU still holds the disks.
        guard let state = try await state(instance.uuid) else { return false }
        return state != "shut off"
    }

    public func start(_ instance: InstanceRecord) async throws {
        guard let state = try await state(instance.uuid) else {
            throw AgentError.wrongState("Instance '\(instance.name)' has no libvirt domain (UUID \(instance.uuid)) on \(uri)")
        }
        guard state == "shut off" else { return }
        try await run("start %s", instance.uuid, timeout: commandTimeout)
    }

    public func stop(_ instance: InstanceRecord) async throws {
        guard try await isRunning(instance) else { return }
        let shutdown = try await virsh("shutdown %s", instance.uuid, timeout: commandTimeout)
        // It may have stopped meanwhile; anything else is a real failure.
        if !shutdown.succeeded, try await isRunning(instance) { throw failure("shutdown", instance.uuid, shutdown) }
        let patience = forceStopAfter ?? stopTimeout
        if try await waitOff(instance, seconds: patience) { return }
        guard let forceStopAfter else {
            throw AgentError.wrongState("Instance '\(instance.name)' is still running \(HostCommand.seconds(patience)) s after an ACPI shutdown; "
                + "it was not forced off (forceStopAfter in agent.json, --force-stop-after at agent init, allows that)")
        }
        let destroy = try await virsh("destroy %s", instance.uuid, timeout: commandTimeout)
        if !destroy.succeeded, try await isRunning(instance) { throw failure("destroy", instance.uuid, destroy) }
        guard try await waitOff(instance, seconds: 60) else {
            throw AgentError.wrongState("Instance '\(instance.name)' is still running after it was forced off (\(HostCommand.seconds(forceStopAfter)) s after an ACPI shutdown)")
        }
    }

    /// Follows the domain's state until it is shut off or `seconds` have passed.
    private func waitOff(_ instance: InstanceRecord, seconds: Double) async throws -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        var delay: UInt64 = 100_000_000
        while try await isRunning(instance) {
            guard Date() < deadline else { return false }
            try await Task.sleep(nanoseconds: min(delay, UInt64(max(0.01, deadline.timeIntervalSinceNow) * 1e9)))
            delay = min(delay * 2, 1_000_000_000)
        }
        return true
    }

    /// The name is free on the host and the spec makes a domain definition (its NICs can be
    /// attached, its memory and vCPUs are numbers).
    public func checkPlacement(_ spec: InstanceSpec) async throws {
        let probe = InstanceRecord(spec: spec, diskPaths: spec.disks.indices.map { "/nonexistent/disk\($0)" }, adminState: "down")
        _ = try LibvirtDomainXML.definition(of: probe, type: domainType)
        try await checkNameFree(spec.name)
    }

    func checkNameFree(_ name: String) async throws {
        let outcome = try await virsh("domuuid %s", name, timeout: statusTimeout)
        if outcome.succeeded {
            let uuid = outcome.output.trimmingCharacters(in: .whitespacesAndNewlines)
            throw AgentError.exists("a libvirt domain named '\(name)' (UUID \(uuid)) already exists on \(uri); it is not this agent's to replace")
        }
        guard Self.isNoSuchDomain(outcome.output) else { throw failure("domuuid", name, outcome) }
    }

    public func define(_ instance: InstanceRecord) async throws -> String? {
        let xml = try LibvirtDomainXML.definition(of: instance, type: domainType)
        // A domain of this UUID is the agent's own, from an attempt a crash interrupted: it is
        // defined again. Any other domain of the name is refused (and libvirt would refuse it).
        if try await state(instance.uuid) == nil { try await checkNameFree(instance.name) }
        try FileManager.default.createDirectory(atPath: scratchFolder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let file = "\(scratchFolder)/\(instance.uuid).xml"
        try SecureFile.write(contents: Array(xml.utf8), to: file, mode: 0o600, replace: true)
        defer { try? FileManager.default.removeItem(atPath: file) }
        try await run("define %s", file, timeout: commandTimeout)
        return "Defined libvirt domain \(instance.name) (UUID \(instance.uuid)) on \(uri)"
    }

    public func undefine(_ instance: InstanceRecord) async throws {
        let outcome = try await virsh("undefine %s --managed-save --snapshots-metadata --nvram", instance.uuid, timeout: commandTimeout)
        guard outcome.succeeded || Self.isNoSuchDomain(outcome.output) else { throw failure("undefine", instance.uuid, outcome) }
    }

    /// An existing domain, for adoption.
    func describe(domain name: String) async throws -> (LibvirtDomainXML.Description, running: Bool) {
        let outcome = try await virsh("dumpxml --inactive %s", name, timeout: statusTimeout)
        guard outcome.succeeded else {
            if Self.isNoSuchDomain(outcome.output) { throw AgentError.unknown("there is no libvirt domain '\(name)' on \(uri)") }
            throw failure("dumpxml", name, outcome)
        }
        let description = try LibvirtDomainXML.describe(outcome.output, domain: name)
        return (description, try await state(description.uuid).map { $0 != "shut off" } ?? false)
    }

    private func virsh(_ subcommand: String, _ argument: String, timeout: Double) async throws -> HostCommand.Outcome {
        try await HostCommand("virsh -q " + subcommand, timeout: timeout).execute(argument, environment: ["LIBVIRT_DEFAULT_URI": uri])
    }

    private func run(_ subcommand: String, _ argument: String, timeout: Double) async throws {
        let outcome = try await virsh(subcommand, argument, timeout: timeout)
        guard outcome.succeeded else { throw failure(String(subcommand.prefix { $0 != " " }), argument, outcome) }
    }

    private func failure(_ verb: String, _ argument: String, _ outcome: HostCommand.Outcome) -> AgentError {
        let how = outcome.exitStatus.map { "exit \($0)" } ?? "signal \(outcome.signal ?? 0)"
        // virsh's lines on one line: an error is one line of the log and of the job's result.
        let said = outcome.output.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
            .joined(separator: "; ").suffix(300)
        return AgentError.execution("virsh \(verb) \(argument) on \(uri) failed (\(how)): \(said)")
    }

    /// virsh's words for a domain that does not exist (`failed to get domain`, `Domain not found`).
    static func isNoSuchDomain(_ output: String) -> Bool {
        output.contains("failed to get domain") || output.contains("Domain not found")
    }
}
