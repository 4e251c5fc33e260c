import Foundation
import Synchronization

/// nbdcopy (libnbd) into nbdkit's file plugin over TLS with both peers verified against one CA:
/// how virt-v2v and Forklift copy a disk, and the best tool for it today. The destination is
/// flushed (`nbdcopy --flush`), as gnt-move's is.
extension StreamBenchmark {
    /// Where nbdcopy and nbdkit are, or nil (the baseline is then skipped with a line saying so).
    public static var nbdTools: (nbdkit: String, nbdcopy: String)? {
        let nbdkit = ["/usr/sbin/nbdkit", "/usr/bin/nbdkit"].first { FileManager.default.isExecutableFile(atPath: $0) }
        let nbdcopy = "/usr/bin/nbdcopy"
        guard let nbdkit, FileManager.default.isExecutableFile(atPath: nbdcopy) else { return nil }
        return (nbdkit, nbdcopy)
    }

    /// A CA and a server and a client certificate signed by it (GnuTLS's file names), made once
    /// per benchmark folder with the openssl command.
    func nbdCertificates() throws -> String {
        let folder = directory + "/nbd-tls"
        if FileManager.default.fileExists(atPath: folder + "/client-key.pem") { return folder }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        let script = """
        set -e; cd "$1"
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca-key.pem -out ca-cert.pem -subj /CN=bench-ca -days 2
        for who in server client; do
          openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout $who-key.pem -out $who.csr -subj /CN=$who
          usage=serverAuth; [ $who = client ] && usage=clientAuth
          printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\nextendedKeyUsage=%s\\n' $usage > $who.ext
          openssl x509 -req -in $who.csr -CA ca-cert.pem -CAkey ca-key.pem -CAcreateserial -out $who-cert.pem -days 2 -extfile $who.ext
        done
        """
        try BenchmarkProcess("/bin/bash", ["-c", script, "bash", folder], logPath: folder + "/openssl.log").wait()
        return folder
    }

    /// Copies `source` with nbdcopy into a fresh file served by nbdkit; the time runs from
    /// nbdcopy's start to its end (connection, TLS, copy, flush).
    public func runNbdcopy(source: String, data: String) throws -> Measurement {
        guard let tools = Self.nbdTools else { throw BlockStreamError(.configuration, "nbdkit and nbdcopy are not installed") }
        let certificates = try nbdCertificates()
        let destination = directory + "/dest.img"
        try? FileManager.default.removeItem(atPath: destination)
        guard FileManager.default.createFile(atPath: destination, contents: nil), truncate(destination, off_t(size)) == 0 else {
            throw BlockStreamError(.configuration, "cannot create \(destination)")
        }
        let port = try TCPListener(bind: "127.0.0.1", port: 0, family: .ipv4).port
        let server = try BenchmarkProcess(tools.nbdkit, ["-f", "--exit-with-parent", "-i", "127.0.0.1", "-p", String(port), "--tls=require",
                                                         "--tls-certificates=\(certificates)", "--tls-verify-peer", "file", "file=\(destination)"],
                                          logPath: directory + "/nbdkit.log")
        var killed = false
        func stopServer() {
            guard !killed else { return }
            killed = true
            // SIGKILL: a child may inherit a blocked SIGTERM from the thread that spawned it.
            kill(server.process.processIdentifier, SIGKILL)
            server.process.waitUntilExit()
        }
        defer { stopServer() }
        guard BenchmarkProcess.poll(seconds: 30, { (try? TCPConnector(host: "127.0.0.1", port: port, family: .ipv4, attemptTimeout: 1, retries: 0,
                                                                     retryInterval: 0).connectOnce()).map { close($0); return true } }) != nil else {
            throw BlockStreamError(.configuration, "nbdkit did not listen on port \(port)")
        }
        let start = Monotonic.now()
        // bash reports the CPU time of nbdcopy (`times`: its children's user and system time).
        let copyLog = directory + "/nbdcopy.log"
        try BenchmarkProcess("/bin/bash", ["-c", "\"$@\"; status=$?; times; exit $status", "bash", tools.nbdcopy, "--flush", source,
                                           "nbds://127.0.0.1:\(port)/?tls-certificates=\(certificates)"], logPath: copyLog).wait()
        let seconds = Monotonic.now() - start
        let serverCPU = Self.cpuSeconds(ofRunning: server.process.processIdentifier)
        stopServer()
        try verifySize(destination)
        var measurement = Measurement(data: data, compression: .none, tool: "nbdcopy", seconds: seconds, bytes: size)
        measurement.sourceCPU = Self.childCPUSeconds(fromTimesOutput: (try? String(contentsOfFile: copyLog, encoding: .utf8)) ?? "")
        measurement.destinationCPU = serverCPU
        return measurement
    }

    /// User and system CPU seconds of a running process (`/proc/PID/stat`, fields 14 and 15).
    static func cpuSeconds(ofRunning pid: Int32) -> Double? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let end = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: end)...].split(separator: " ")
        // After the command: state is field 3, so utime (14) and stime (15) are at 11 and 12.
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        return (user + system) / ticks
    }

    /// The children's CPU seconds from bash's `times` (its last line: `0m1.234s 0m0.567s`).
    static func childCPUSeconds(fromTimesOutput text: String) -> Double? {
        guard let line = text.split(separator: "\n").last else { return nil }
        let parts = line.split(separator: " ")
        guard parts.count == 2 else { return nil }
        var total = 0.0
        for part in parts {
            let pieces = part.dropLast().split(separator: "m")
            guard part.hasSuffix("s"), pieces.count == 2, let minutes = Double(pieces[0]), let seconds = Double(pieces[1]) else { return nil }
            total += minutes * 60 + seconds
        }
        return total
    }
}

extension StreamBenchmark {
    /// Runs `run` on each benchmark at once, one thread each (like an instance whose disks move
    /// together); the result covers all of them: the bytes and the CPU time added up, the time
    /// of the slowest.
    public static func together(_ benchmarks: [StreamBenchmark], data: String,
                                _ run: @escaping @Sendable (StreamBenchmark) throws -> Measurement) throws -> Measurement {
        let results = Mutex<[Result<Measurement, any Error>]>([])
        let start = Monotonic.now()
        let threads = benchmarks.map { benchmark in
            let box = UncheckedBenchmark(benchmark: benchmark)
            return JoinableThread(name: "bench-disk") {
                let outcome = Result { try run(box.benchmark) }
                results.withLock { $0.append(outcome) }
            }
        }
        threads.forEach { $0.join() }
        let seconds = Monotonic.now() - start
        let measurements = try results.withLock { $0 }.map { try $0.get() }
        guard let first = measurements.first else { throw BlockStreamError(.configuration, "no disks to move") }
        var total = Measurement(data: data, compression: first.compression, tool: first.tool, seconds: seconds,
                                bytes: measurements.reduce(0) { $0 + $1.bytes })
        if measurements.allSatisfy({ $0.sourceCPU != nil && $0.destinationCPU != nil }) {
            total.sourceCPU = measurements.reduce(0) { $0 + ($1.sourceCPU ?? 0) }
            total.destinationCPU = measurements.reduce(0) { $0 + ($1.destinationCPU ?? 0) }
        }
        return total
    }
}

/// A benchmark handed to its own thread (each thread uses only its own).
private struct UncheckedBenchmark: @unchecked Sendable {
    let benchmark: StreamBenchmark
}
