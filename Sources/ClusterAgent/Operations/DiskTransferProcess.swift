import BlockStream
import Foundation
import MoveTrust
import OpenSSLSupport

/// One supervised `gnt-move import-export` process: its own folder under the agent's
/// import-export directory (status file, journal, the peer's certificate, the log).
final class DiskTransferProcess: @unchecked Sendable {
    let index: Int
    let folder: String
    let process = Process()
    /// The disk's size in bytes, when known.
    private(set) var expectedSize: Int64?
    var statusPath: String { folder + "/status" }

    /// An OS script between the daemon and the disk (Ganeti's OS API): `export` writes the stream
    /// to the exporting daemon's stdin, `import` reads it from the importing daemon's stdout.
    struct OSScript {
        let folder: String
        let environment: [String: String]
    }

    /// Starts the daemon with its own key and certificate (`keyPath`, `certificatePath`).
    /// `peerCertificate` is written to `FOLDER/ca`, the only certificate it trusts; the status
    /// file is `FOLDER/status`. `configure` sets the rest of the daemon's options.
    init(executable: String, mode: ImportExportOptions.Mode, index: Int, baseFolder: String,
         keyPath: String, certificatePath: String, peerCertificate: X509Certificate, osScript: OSScript? = nil,
         configure: (inout ImportExportOptions) -> Void) throws {
        self.index = index
        let stamp = UnixTime.forFilename(UnixTime.now())
        folder = "\(baseFolder)/\(mode.rawValue)-disk\(index)-\(stamp)-\(UUID().uuidString.prefix(8).lowercased())"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        try Data(try peerCertificate.canonicalPEM().utf8).write(to: URL(fileURLWithPath: folder + "/ca"))
        let logPath = folder + "/log"
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        // The child gets its own copy of the descriptor; the agent's must be closed whether or
        // not the spawn succeeded, or every transfer leaks one.
        defer { try? log.close() }
        var options = ImportExportOptions(mode: mode, keyPath: keyPath, certificatePath: certificatePath, caPath: folder + "/ca")
        options.statusFile = statusPath
        configure(&options)
        expectedSize = options.expectedSize
        let daemon = [executable, ImportExportOptions.subcommand] + options.commandLine
        if let osScript {
            // bash with pipefail, arguments passed positionally so that nothing needs quoting.
            let pipeline = mode == .export ? "( cd \"$1\" && ./export ) | \"${@:2}\"" : "\"${@:2}\" | ( cd \"$1\" && ./import )"
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-o", "pipefail", "-c", pipeline, "bash", osScript.folder] + daemon
            process.environment = ProcessInfo.processInfo.environment.merging(osScript.environment) { $1 }
        } else {
            process.executableURL = URL(fileURLWithPath: executable)
            process.arguments = Array(daemon.dropFirst())
        }
        process.standardOutput = FileHandle.nullDevice
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try DaemonSpawner.shared.run(process)
        try? Data(String(process.processIdentifier).utf8).write(to: URL(fileURLWithPath: folder + "/pid"))
    }

    var status: ImportExportStatus? { try? ImportExportStatus.load(path: statusPath) }
    var isRunning: Bool { process.isRunning }

    func kill() { if process.isRunning { process.terminate() } }

    /// Stops every daemon and waits until each has exited (SIGTERM, then SIGKILL after 10 s), so
    /// that none still writes a disk when this returns.
    static func stopAll(_ daemons: [DiskTransferProcess]) async {
        daemons.forEach { $0.kill() }
        let deadline = Date().addingTimeInterval(10)
        while daemons.contains(where: { $0.isRunning }) {
            if Date() > deadline {
                for daemon in daemons where daemon.isRunning { Foundation.kill(daemon.process.processIdentifier, SIGKILL) }
            }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    /// The reason a finished daemon failed, from its status file.
    var failure: String? {
        guard !process.isRunning else { return nil }
        if process.terminationStatus == 0 { return nil }
        return status?.error_message ?? "exited with status \(process.terminationStatus)"
    }

    func removeFolder() { try? FileManager.default.removeItem(atPath: folder) }
}

extension AddressFamily {
    /// The family of `address`: IPv6 for an IPv6 literal, else IPv4 (a host name resolves as
    /// IPv4, as Ganeti's daemons do unless told otherwise).
    init(of address: String) {
        self = NetworkNames.isIPv6(address) ? .ipv6 : .ipv4
    }
}

/// Starts every disk daemon from one long-lived thread. Foundation's `Process` keeps the run loop
/// of the thread that started it (an epoll, an eventfd and a timerfd); started from whichever
/// pool thread runs the job, those accumulate as the pool's threads change.
final class DaemonSpawner: @unchecked Sendable {
    static let shared = DaemonSpawner()
    private let condition = NSCondition()
    private var work: [() -> Void] = []

    private init() {
        let thread = Thread { [self] in
            while true {
                condition.lock()
                while work.isEmpty { condition.wait() }
                let next = work.removeFirst()
                condition.unlock()
                next()
            }
        }
        thread.name = "daemon-spawner"
        thread.start()
    }

    /// Runs `process.run()` on the spawner thread and waits for it (a fork and exec: brief).
    func run(_ process: Process) throws {
        let done = DispatchSemaphore(value: 0)
        var failure: (any Error)?
        condition.lock()
        work.append {
            do { try process.run() } catch { failure = error }
            done.signal()
        }
        condition.signal()
        condition.unlock()
        done.wait()
        if let failure { throw failure }
    }
}

/// Ganeti's progress wording: `"1.5G, 12.0 MiB/s, 30%"` (`FormatProgress`).
enum ProgressText {
    static func format(mebibytes: Int, throughput: Double?, percent: Double?, eta: Double? = nil) -> String {
        var parts = [formatUnit(mebibytes)]
        if let throughput { parts.append(String(format: "%0.1f MiB/s", throughput)) }
        if let percent { parts.append("\(Int(percent))%") }
        if let eta { parts.append("ETA " + formatSeconds(eta)) }
        return parts.joined(separator: ", ")
    }

    /// `utils.FormatSeconds`: `1h 5m 13s`.
    static func formatSeconds(_ value: Double) -> String {
        var seconds = Int(value.rounded())
        guard seconds > 0 else { return "\(seconds)s" }
        var parts: [String] = []
        for (unit, size) in [("d", 86400), ("h", 3600), ("m", 60)] where seconds >= size || !parts.isEmpty {
            parts.append("\(seconds / size)\(unit)")
            seconds %= size
        }
        parts.append("\(seconds)s")
        return parts.joined(separator: " ")
    }

    /// `utils.FormatUnit(value, "h")` for MiB.
    static func formatUnit(_ mebibytes: Int) -> String {
        let value = Double(mebibytes)
        if mebibytes < 1024 { return "\(mebibytes)M" }
        if mebibytes < 1024 * 1024 { return String(format: "%0.1fG", value / 1024) }
        return String(format: "%0.1fT", value / 1024 / 1024)
    }
}
