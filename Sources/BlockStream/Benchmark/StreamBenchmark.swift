import Foundation
import OpenSSLSupport

/// Moves the same file over loopback several ways in one run and compares gnt-move with a
/// socat pipeline built like Ganeti's (dd, gzip -1 or zstd -1, socat, and a final dd with
/// conv=fsync, since gnt-move also flushes its destination).
public struct StreamBenchmark {
    /// Per-move key material for both ends (CN localhost, for socat's common-name check).
    public struct Keys: Sendable {
        public var importerKey: String, importerCert: String, exporterKey: String, exporterCert: String
        public init(importerKey: String, importerCert: String, exporterKey: String, exporterCert: String) {
            (self.importerKey, self.importerCert, self.exporterKey, self.exporterCert) = (importerKey, importerCert, exporterKey, exporterCert)
        }
    }

    public struct Measurement: Sendable {
        public let data: String
        public let compression: CompressionMethod
        public let tool: String
        public let seconds: Double
        public let bytes: Int64
        /// CPU seconds the sending and the receiving side used, when measured.
        public var sourceCPU: Double? = nil
        public var destinationCPU: Double? = nil
        public var megabytesPerSecond: Double { Double(bytes) / 1e6 / seconds }

        /// CPU seconds per GiB moved on each side, as `source / destination`.
        public var cpuPerGiB: String {
            guard let sourceCPU, let destinationCPU, bytes > 0 else { return "–" }
            let gib = Double(bytes) / Double(1 << 30)
            return String(format: "%.2f / %.2f", sourceCPU / gib, destinationCPU / gib)
        }
    }

    public let executable: String
    public let directory: String
    public let keys: Keys
    public let size: Int64
    public let log: (String) -> Void
    static let magic = "fb4ac43ab6b73df33e1c375865e788eb633799c5"

    public init(executable: String, directory: String, keys: Keys, size: Int64, log: @escaping (String) -> Void) {
        self.executable = executable
        self.directory = directory
        self.keys = keys
        self.size = size
        self.log = log
    }

    /// Compressible data: system binaries and libraries, concatenated.
    public func makeCompressible(_ path: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let out = FileHandle(forWritingAtPath: path) else { throw BlockStreamError(.configuration, "cannot create \(path)") }
        defer { try? out.close() }
        var written: Int64 = 0
        let folders = ["/usr/bin", "/usr/lib/x86_64-linux-gnu", "/usr/lib", "/usr/share/doc"]
        var files: [String] = []
        for folder in folders {
            for name in (try? FileManager.default.contentsOfDirectory(atPath: folder))?.sorted() ?? [] {
                let file = folder + "/" + name
                var isDirectory: ObjCBool = false
                if FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory), !isDirectory.boolValue { files.append(file) }
            }
        }
        guard !files.isEmpty else { throw BlockStreamError(.configuration, "no system files to build compressible data from") }
        while written < size {
            for file in files where written < size {
                guard let data = FileManager.default.contents(atPath: file), !data.isEmpty else { continue }
                let piece = data.prefix(Int(min(Int64(data.count), size - written)))
                try out.write(contentsOf: piece)
                written += Int64(piece.count)
            }
        }
    }

    public func makeRandom(_ path: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let out = FileHandle(forWritingAtPath: path) else { throw BlockStreamError(.configuration, "cannot create \(path)") }
        defer { try? out.close() }
        var written: Int64 = 0
        while written < size {
            let count = Int(min(Int64(8 << 20), size - written))
            try out.write(contentsOf: Data(SecureRandom.bytes(count)))
            written += Int64(count)
        }
    }

    /// A sparse image of `size` bytes with `dataBytes` of compressible data in 1 MiB extents
    /// spread evenly over it.
    public func makeSparse(_ path: String, dataBytes: Int64, from compressible: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let out = FileHandle(forWritingAtPath: path), let input = FileHandle(forReadingAtPath: compressible) else {
            throw BlockStreamError(.configuration, "cannot create \(path)")
        }
        defer { try? out.close(); try? input.close() }
        try out.truncate(atOffset: UInt64(size))
        let extents = max(1, dataBytes >> 20)
        let stride = size / extents
        for index in 0..<extents {
            guard let piece = try input.read(upToCount: 1 << 20), !piece.isEmpty else { break }
            try out.seek(toOffset: UInt64(index * stride))
            try out.write(contentsOf: piece)
        }
    }

    /// Dense mixed data: runs of system binaries, random bytes and zeros.
    public func makeMixed(_ path: String, from compressible: String) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let out = FileHandle(forWritingAtPath: path), let input = FileHandle(forReadingAtPath: compressible) else {
            throw BlockStreamError(.configuration, "cannot create \(path)")
        }
        defer { try? out.close(); try? input.close() }
        var written: Int64 = 0
        var turn = 0
        while written < size {
            let count = Int(min(Int64(turn % 3 == 0 ? 48 << 20 : 8 << 20), size - written))
            let piece: Data
            switch turn % 3 {
            case 0: piece = (try input.read(upToCount: count)) ?? Data(count: count)
            case 1: piece = Data(SecureRandom.bytes(count))
            default: piece = Data(count: count)
            }
            try out.write(contentsOf: piece.count == count ? piece : piece + Data(count: count - piece.count))
            written += Int64(count)
            turn += 1
        }
    }

    /// gnt-move exporter into gnt-move importer. `streamProtocol` picks Ganeti's stream or
    /// gnt-move/1; `keepDestination` and `adjustExporter` serve the resume measurement.
    public func runGntMove(source: String, compression: CompressionMethod, data: String,
                           streamProtocol: ImportExportOptions.StreamProtocol = .ganeti, keepDestination: Bool = false,
                           adjustExporter: (inout ImportExportOptions) -> Void = { _ in }, expectFailure: Bool = false) throws -> Measurement {
        let destination = directory + "/dest.img"
        if !keepDestination {
            try? FileManager.default.removeItem(atPath: destination)
            for journal in ["/import.status.journal", "/export.status.journal"] { try? FileManager.default.removeItem(atPath: directory + journal) }
        }
        let status = directory + "/import.status"
        try? FileManager.default.removeItem(atPath: status)
        var importing = ImportExportOptions(mode: .import, keyPath: keys.importerKey, certificatePath: keys.importerCert,
                                            caPath: keys.exporterCert, connectTimeout: 60)
        importing.statusFile = status
        importing.stream = StreamSettings(compression: compression, magic: Self.magic)
        importing.path = destination
        importing.streamProtocol = streamProtocol
        let importer = try BenchmarkProcess(executable, [ImportExportOptions.subcommand] + importing.commandLine, logPath: directory + "/import.log")
        guard let port = BenchmarkProcess.poll(seconds: 30, { (try? ImportExportStatus.load(path: status))?.listen_port }) else {
            importer.process.terminate()
            throw BlockStreamError(.configuration, "the gnt-move importer did not listen")
        }
        let start = Monotonic.now()
        var exporting = ImportExportOptions(mode: .export, keyPath: keys.exporterKey, certificatePath: keys.exporterCert, caPath: keys.importerCert)
        exporting.statusFile = directory + "/export.status"
        exporting.host = "127.0.0.1"
        exporting.port = port
        exporting.stream = StreamSettings(compression: compression, magic: Self.magic)
        exporting.path = source
        exporting.streamProtocol = streamProtocol
        adjustExporter(&exporting)
        let exporter = try BenchmarkProcess(executable, [ImportExportOptions.subcommand] + exporting.commandLine, logPath: directory + "/export.log")
        if expectFailure {
            exporter.process.waitUntilExit()
            importer.process.waitUntilExit()
            return Measurement(data: data, compression: compression, tool: "gnt-move", seconds: Monotonic.now() - start, bytes: size)
        }
        try exporter.wait()
        try importer.wait()
        let seconds = Monotonic.now() - start
        try verifySize(destination)
        var measurement = Measurement(data: data, compression: compression, tool: "gnt-move \(streamProtocol.rawValue)", seconds: seconds, bytes: size)
        measurement.sourceCPU = (try? ImportExportStatus.load(path: directory + "/export.status"))?.cpu_seconds
        measurement.destinationCPU = (try? ImportExportStatus.load(path: status))?.cpu_seconds
        return measurement
    }

    /// The Ganeti-style socat pipeline (docs/protocol.md §5.2), dd with conv=fsync at the end.
    public func runSocat(source: String, compression: CompressionMethod, data: String) throws -> Measurement {
        let destination = directory + "/dest.img"
        try? FileManager.default.removeItem(atPath: destination)
        let socatLog = directory + "/socat-import.log"
        try? FileManager.default.removeItem(atPath: socatLog)
        let cipher = "HIGH:-DES:-3DES:-EXPORT:-DH"
        let common = "keepalive,keepidle=60,keepintvl=10,keepcnt=5,verify=1,cipher=\(cipher)"
        let (compress, decompress): (String?, String?) = switch compression {
        case .gzip, .gzipFast: ("gzip -1 -c", "gzip -d -c")
        case .gzipSlow: ("gzip -c", "gzip -d -c")
        case .zstd: ("zstd -1 -c", "zstd -d -c")
        case .none: (nil, nil)
        }
        let prefix = "M=" + Self.magic
        var importStages = ["/usr/bin/socat -ls -d -d -b1048576 -u OPENSSL-LISTEN:0,reuseaddr,forever,intervall=0.01,\(common),key=\(keys.importerKey),cert=\(keys.importerCert),cafile=\(keys.exporterCert),pf=ipv4 stdout 2>\(socatLog)"]
        if let decompress { importStages.append(decompress) }
        importStages.append("{ { read -n \(prefix.utf8.count) magic && if test \"$magic\" != \(prefix); then echo 'Magic value mismatch' >&2; exit 1;fi; } && { LC_ALL=C dd bs=1048576 <&0 2>/dev/null & pid=${!}; wait $pid; } }")
        importStages.append("dd of=\(destination) bs=1048576 conv=notrunc,fsync 2>/dev/null")
        let importer = try BenchmarkProcess.shell(importStages.joined(separator: " | "), logPath: directory + "/socat-import.err")
        guard let port = BenchmarkProcess.poll(seconds: 30, { () -> Int? in
            guard let text = try? String(contentsOfFile: socatLog, encoding: .utf8),
                  let range = text.range(of: #"listening on AF=2 [0-9.]+:(\d+)"#, options: .regularExpression) else { return nil }
            return Int(text[range].split(separator: ":").last ?? "")
        }) else {
            importer.process.terminate()
            throw BlockStreamError(.configuration, "socat did not listen")
        }
        var exportStages = ["{ echo -E -n \(prefix) && { LC_ALL=C dd if=\(source) bs=1048576 2>/dev/null & pid=${!}; wait $pid; } }"]
        if let compress { exportStages.append(compress) }
        exportStages.append("/usr/bin/socat -ls -d -d -b1048576 -u stdin OPENSSL:127.0.0.1:\(port),connect-timeout=20,retry=10,intervall=1,\(common),key=\(keys.exporterKey),cert=\(keys.exporterCert),cafile=\(keys.importerCert),pf=ipv4,openssl-commonname=localhost")
        let start = Monotonic.now()
        let exporter = try BenchmarkProcess.shell(exportStages.joined(separator: " | "), logPath: directory + "/socat-export.err")
        try exporter.wait()
        try importer.wait()
        let seconds = Monotonic.now() - start
        try verifySize(destination)
        return Measurement(data: data, compression: compression, tool: "socat", seconds: seconds, bytes: size)
    }

    func verifySize(_ path: String) throws {
        let written = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int64) ?? -1
        guard written == size else {
            throw BlockStreamError(.integrity, "benchmark destination has \(written) bytes, expected \(size)")
        }
    }
}

/// A results table: MB/s per tool and the ratio against the baseline run beside it.
public struct BenchmarkTable {
    public struct Row: Sendable {
        public let label: String
        public let candidate: Double
        public let baseline: Double
        public let baselineName: String
        public let target: Double
        /// CPU seconds per GiB, source / destination, of gnt-move and of the baseline.
        public var cpu: (candidate: String, baseline: String)?
        public var ratio: Double { candidate / baseline }
        public var met: Bool { ratio >= target }

        public init(label: String, candidate: Double, baseline: Double, baselineName: String, target: Double) {
            (self.label, self.candidate, self.baseline, self.baselineName, self.target) = (label, candidate, baseline, baselineName, target)
        }

        /// A row from two measurements, with their CPU time per side.
        public init(label: String, candidate: StreamBenchmark.Measurement, baseline: StreamBenchmark.Measurement, baselineName: String, target: Double) {
            self.init(label: label, candidate: candidate.megabytesPerSecond, baseline: baseline.megabytesPerSecond, baselineName: baselineName, target: target)
            cpu = (candidate.cpuPerGiB, baseline.cpuPerGiB)
        }
    }

    public var rows: [Row] = []
    public init() {}

    public var rendered: String {
        let withCPU = rows.contains { $0.cpu != nil }
        let cpuHeader = withCPU ? " gnt-move CPU-s/GiB src / dst | baseline CPU-s/GiB src / dst |" : ""
        var lines = ["| scenario | gnt-move MB/s | baseline | baseline MB/s | ratio | target |" + cpuHeader,
                     "|---|---:|---|---:|---:|---:|" + (withCPU ? "---:|---:|" : "")]
        for row in rows {
            let target = row.target > 0 ? "≥\(String(format: "%.2g", row.target))× \(row.met ? "met" : "MISSED")" : "–"
            let cpu = withCPU ? " \(row.cpu?.candidate ?? "–") | \(row.cpu?.baseline ?? "–") |" : ""
            lines.append("| \(row.label) | \(String(format: "%.0f", row.candidate)) | \(row.baselineName) | \(String(format: "%.0f", row.baseline)) | \(String(format: "%.2f×", row.ratio)) | \(target) |" + cpu)
        }
        return lines.joined(separator: "\n")
    }
}
