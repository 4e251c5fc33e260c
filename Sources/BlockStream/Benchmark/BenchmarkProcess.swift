import Foundation

/// Runs the processes a benchmark compares. Output goes to files so that nothing can block.
struct BenchmarkProcess {
    let process = Process()
    let logPath: String

    init(_ executable: String, _ arguments: [String], logPath: String) throws {
        self.logPath = logPath
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    static func shell(_ command: String, logPath: String) throws -> BenchmarkProcess {
        try BenchmarkProcess("/bin/bash", ["-o", "errexit", "-o", "pipefail", "-c", command], logPath: logPath)
    }

    func wait() throws {
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let log = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
            throw BlockStreamError(.configuration, "benchmark step failed (exit \(process.terminationStatus)): \(log.suffix(400))")
        }
    }

    /// Polls until `read` yields a value, for at most `seconds`.
    static func poll<T>(seconds: Double, _ read: () -> T?) -> T? {
        let deadline = Monotonic.now() + seconds
        while Monotonic.now() < deadline {
            if let value = read() { return value }
            usleep(10_000)
        }
        return read()
    }
}
