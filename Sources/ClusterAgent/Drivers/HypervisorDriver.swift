import Foundation

/// Starts and stops instances. `fake` only records the state (tests, file-only hosts);
/// `command` runs the configured commands with `%s` replaced by the instance name (e.g. virsh).
public protocol HypervisorDriver: Sendable {
    func start(_ instance: String) throws
    func stop(_ instance: String) throws
    func isRunning(_ instance: String, recorded: Bool) -> Bool
}

public struct FakeHypervisor: HypervisorDriver {
    public init() {}
    public func start(_ instance: String) throws {}
    public func stop(_ instance: String) throws {}
    public func isRunning(_ instance: String, recorded: Bool) -> Bool { recorded }
}

public struct CommandHypervisor: HypervisorDriver {
    let startCommand: String
    let stopCommand: String
    let statusCommand: String?

    public func start(_ instance: String) throws { try Shell.run(startCommand, instance) }
    public func stop(_ instance: String) throws { try Shell.run(stopCommand, instance) }
    public func isRunning(_ instance: String, recorded: Bool) -> Bool {
        guard let statusCommand else { return recorded }
        return (try? Shell.run(statusCommand, instance)) != nil
    }
}

/// Runs a configured command through `/bin/sh -c`, the instance name passed as `$1` and
/// substituted for `%s`, so names never need quoting.
enum Shell {
    @discardableResult
    static func run(_ template: String, _ argument: String, environment: [String: String] = [:]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/sh")
        process.arguments = ["-c", template.replacingOccurrences(of: "%s", with: "\"$1\""), "gnt-move", argument]
        if !environment.isEmpty { process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 } }
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let text = String(decoding: data, as: UTF8.self)
        guard process.terminationStatus == 0 else {
            throw AgentError.execution("command '\(template)' for \(argument) failed (exit \(process.terminationStatus)): \(text.suffix(300))")
        }
        return text
    }
}
