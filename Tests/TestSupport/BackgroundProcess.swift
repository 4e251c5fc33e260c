import Foundation

/// A real subprocess running in the background: started, observed, killed, waited for.
public final class BackgroundProcess: @unchecked Sendable {
    public let process = Process()
    private let scratch = TemporaryDirectory("bg")
    public let stdoutPath: String
    public let stderrPath: String
    private var input: FileHandle?

    /// Starts `executable`; with `stdinPipe`, the test feeds stdin through ``writeStdin(_:)``.
    public init(_ executable: String, _ arguments: [String], stdinPipe: Bool = false, stdinFile: String? = nil,
                environment: [String: String]? = nil) throws {
        stdoutPath = scratch.file("stdout")
        stderrPath = scratch.file("stderr")
        FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        if stdinPipe {
            let pipe = Pipe()
            process.standardInput = pipe
            input = pipe.fileHandleForWriting
        } else if let stdinFile {
            process.standardInput = try FileHandle(forReadingFrom: URL(fileURLWithPath: stdinFile))
        } else {
            process.standardInput = FileHandle.nullDevice
        }
        try process.run()
    }

    public var pid: Int32 { process.processIdentifier }
    /// Nil while the process runs.
    public var exitStatus: Int32? { process.isRunning ? nil : process.terminationStatus }

    public func writeStdin(_ data: Data) throws { try input?.write(contentsOf: data) }
    public func closeStdin() throws { try input?.close(); input = nil }

    public func kill(_ signal: Int32 = SIGKILL) { Foundation.kill(pid, signal) }

    /// Waits up to `timeout` seconds; kills the process if it is still running then.
    @discardableResult
    public func wait(timeout: Double = 120) -> Int32 {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { kill(); process.waitUntilExit() }
        process.waitUntilExit()
        return process.terminationStatus
    }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
}

/// Polls `condition` every 20 ms until it holds or `timeout` passes.
public func waitFor(timeout: Double = 20, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        usleep(20_000)
    }
    return condition()
}

/// A TCP port on 127.0.0.1 that was free a moment ago.
public func freePort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Resets every established TCP connection to or from `port` on this host, both sockets, as a
/// cut network does (`ss -K`, root); returns how many sockets were reset.
public func resetTCPConnections(port: Int) throws -> Int {
    let result = try runProcess("/usr/bin/ss", ["-K", "-t", "-n", "( sport = :\(port) or dport = :\(port) )"])
    return result.stdout.split(separator: "\n").filter { $0.contains("ESTAB") }.count
}
