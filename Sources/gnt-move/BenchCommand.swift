import ArgumentParser
import BlockStream
import Foundation
import MoveCoordinator

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print ratios against baselines run beside them.",
        subcommands: [Stream.self])

    struct Stream: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move one file over loopback with gnt-move and with Ganeti's socat pipeline; print MB/s and ratios.",
            discussion: "Build with -c release first. Needs socat, gzip and zstd, and twice --size free in --dir.")

        @Option(help: "Bytes per test file (K, M, G suffixes).") var size = ByteSize(bytes: 2 << 30)
        @Option(help: "Folder for the test files (default: a new temporary folder, removed afterwards).") var dir: String?
        @Option(help: "Repeat each measurement this many times and keep the median.") var runs = 1
        @Option(help: "Compression modes to run.") var modes = "none,gzip,zstd"

        func execute() throws {
            let folder = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("gnt-move-bench-\(UUID().uuidString)").path
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            defer { if dir == nil { try? FileManager.default.removeItem(atPath: folder) } }
            let secret = ClusterDomainSecret(key: ClusterDomainSecret.generateText())
            let store = X509KeyStore(directory: folder + "/keys")
            let importer = try store.create(secret: secret, commonName: "localhost")
            let exporter = try store.create(secret: secret, commonName: "localhost")
            let benchmark = StreamBenchmark(
                executable: CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0] : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0],
                directory: folder,
                keys: .init(importerKey: importer.keyPath, importerCert: importer.certificatePath,
                            exporterKey: exporter.keyPath, exporterCert: exporter.certificatePath),
                size: size.bytes, log: { Console.error($0) })
            let modeList = modes.split(separator: ",").map(String.init)
            var table = BenchmarkTable()
            for data in ["compressible", "random"] {
                let source = folder + "/\(data).img"
                Console.error("preparing \(size) of \(data) data")
                if data == "compressible" { try benchmark.makeCompressible(source) } else { try benchmark.makeRandom(source) }
                var gntMoveRates: [String: Double] = [:]
                for mode in modeList {
                    let ours = try median((0..<max(1, runs)).map { _ in try benchmark.runGntMove(source: source, mode: mode, data: data) })
                    let theirs = try median((0..<max(1, runs)).map { _ in try benchmark.runSocat(source: source, mode: mode, data: data) })
                    Console.error(String(format: "%@ %@: gnt-move %.0f MB/s, socat %.0f MB/s", data, mode, ours, theirs))
                    gntMoveRates[mode] = ours
                    let target: Double = ["none": 1.3, "gzip": 2.0, "zstd": 1.5][mode] ?? 1.0
                    let baseline = mode == "none" ? "socat" : (mode == "zstd" ? "socat + zstd -1" : "socat + gzip -1")
                    table.rows.append(.init(label: "\(data), \(mode)", candidate: ours, baseline: theirs, baselineName: baseline,
                                            target: data == "random" && mode != "none" ? 0 : target))
                }
                if data == "random", let zstd = gntMoveRates["zstd"], let none = gntMoveRates["none"] {
                    table.rows.append(.init(label: "random, zstd vs own none", candidate: zstd, baseline: none, baselineName: "gnt-move none", target: 0.8))
                }
                try? FileManager.default.removeItem(atPath: source)
            }
            print("Stream benchmark, \(size) per file, median of \(max(1, runs)) run(s), loopback, destination fsynced by both")
            print(table.rendered)
        }

        private func median(_ values: [StreamBenchmark.Measurement]) -> Double {
            let sorted = values.map(\.megabytesPerSecond).sorted()
            return sorted[sorted.count / 2]
        }
    }
}
