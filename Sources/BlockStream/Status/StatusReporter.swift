import Foundation
import OpenSSLSupport
import Synchronization

/// Keeps the status file current: written atomically (temporary file, rename, mode 0400), at
/// most every 5 s while data flows, and at once on listen, connect and exit. Also the daemon's
/// log: each line goes to stderr and into `recent_output` (the last 20).
public final class StatusReporter: @unchecked Sendable {
    public let path: String?
    private let lock = NSLock()
    /// Serialises writers of the file itself (the ticker and forced writes).
    private let fileLock = NSLock()
    private var status: ImportExportStatus
    private var lastWrite = 0.0
    private var samples: [(time: Double, mbytes: Double)] = []
    private let expectedBytes: Int64?
    private let echo: Bool
    /// Payload bytes moved so far (uncompressed), updated by the data path without locking.
    public let bytesMoved = Atomic<Int64>(0)
    /// Bytes handed to TLS so far (exporter).
    public let wireBytes = Atomic<Int64>(0)
    private var ticker: JoinableThread?
    /// Wakes the ticker when the file is due, and at once when the daemon finishes.
    private let wake = NSCondition()
    private var stopped = false
    static let interval = 5.0

    public init(path: String?, expectedBytes: Int64?, echoToStderr: Bool = true) {
        self.path = path
        self.expectedBytes = expectedBytes
        self.echo = echoToStderr
        status = ImportExportStatus(now: Date().timeIntervalSince1970)
    }

    /// Starts the periodic writer.
    public func start() {
        write(force: true)
        ticker = JoinableThread(name: "status") { [self] in
            wake.lock()
            while !stopped {
                _ = wake.wait(until: Date(timeIntervalSinceNow: max(0.05, untilDue)))
                if stopped { break }
                wake.unlock()
                // Sample when the file is due, so that each write carries a fresh rate.
                if writeDue {
                    sample(force: true)
                    write(force: false)
                }
                wake.lock()
            }
            wake.unlock()
        }
    }

    public func log(_ line: String) {
        if echo { FileHandle.standardError.write(Data((line + "\n").utf8)) }
        lock.lock()
        status.recent_output.append(line)
        if status.recent_output.count > 20 { status.recent_output.removeFirst(status.recent_output.count - 20) }
        lock.unlock()
    }

    public func listening(port: Int) {
        update { $0.listen_port = port }
        write(force: true)
    }

    public func connected(protocol name: String) {
        update {
            $0.connected = true
            $0.protocol = name
        }
        sample(force: true)
        write(force: true)
    }

    public func update(_ change: (inout ImportExportStatus) -> Void) {
        lock.lock()
        change(&status)
        lock.unlock()
    }

    /// Records the outcome and writes the final status.
    public func finish(error: (any Error)?) {
        wake.lock()
        stopped = true
        wake.broadcast()
        wake.unlock()
        ticker?.join()
        sample(force: true)
        let peak = Self.peakResidentKiB()
        update {
            $0.exit_status = error == nil ? 0 : 1
            $0.error_message = error.map { "\($0)" }
            $0.verdict = error.map(ConnectionBreak.isVerdict)
            $0.error_kind = error.map(Self.kind)
            $0.max_rss_kib = peak
            $0.cpu_seconds = Self.cpuSeconds()
            let wire = wireBytes.load(ordering: .relaxed)
            if wire > 0 { $0.wire_bytes = wire }
        }
        if let error { log("error: \(error)") }
        write(force: true)
    }

    /// `error_kind`: the failure's kind, as the agent's failure counters group it.
    static func kind(of error: any Error) -> String {
        switch error {
        case let error as BlockStreamError: return error.kind.rawValue
        case let error as TLSError: return "tls-\(error.kind)"
        default: return "other"
        }
    }

    /// VmHWM from /proc/self/status. (getrusage's ru_maxrss would include the parent's memory
    /// at fork time, which survives execve.)
    /// User and system CPU time this process used so far, in seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return ((seconds(usage.ru_utime) + seconds(usage.ru_stime)) * 1000).rounded() / 1000
    }

    static func peakResidentKiB() -> Int? {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            return Int(line.split(separator: " ").dropFirst().first ?? "")
        }
        return nil
    }

    public var snapshot: ImportExportStatus {
        lock.lock(); defer { lock.unlock() }
        return status
    }

    private func sample(force: Bool = false) {
        let now = Monotonic.now()
        let bytes = bytesMoved.load(ordering: .relaxed)
        let mbytes = Double(bytes) / 1_048_576
        lock.lock()
        defer { lock.unlock() }
        if !force, let last = samples.last, now - last.time < Self.interval, status.progress_mbytes != nil { return }
        samples.append((now, mbytes))
        if samples.count > 12 { samples.removeFirst(samples.count - 12) }
        status.progress_mbytes = Int((mbytes).rounded())
        status.progress_bytes = bytes
        status.progress_throughput = calculateThroughput(samples)
        if let expectedBytes, expectedBytes > 0 {
            status.progress_percent = min(100, 100 * Double(bytes) / Double(expectedBytes))
            if let rate = status.progress_throughput, rate > 0 {
                status.progress_eta = max(0, (Double(expectedBytes - bytes) / 1_048_576) / rate)
            }
        }
    }

    private var writeDue: Bool { untilDue <= 0 }

    /// Seconds until the next periodic write.
    private var untilDue: Double {
        fileLock.lock()
        defer { fileLock.unlock() }
        return lastWrite + Self.interval - Monotonic.now()
    }

    private func write(force: Bool) {
        guard let path else { return }
        fileLock.lock()
        defer { fileLock.unlock() }
        lock.lock()
        let now = Monotonic.now()
        if !force && now - lastWrite < Self.interval {
            lock.unlock()
            return
        }
        lastWrite = now
        status.mtime = Date().timeIntervalSince1970
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let data = (try? encoder.encode(status)) ?? Data()
        lock.unlock()
        let temporary = path + ".tmp"
        unlink(temporary)
        guard FileManager.default.createFile(atPath: temporary, contents: data, attributes: [.posixPermissions: 0o400]) else { return }
        rename(temporary, path)
    }
}
