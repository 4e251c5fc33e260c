import ArgumentParser
import BlockStream
import Foundation
import MoveCoordinator

struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmarks that print ratios against baselines run beside them.",
        subcommands: [Stream.self, Cut.self, Warm.self])

    /// `dir`, or a new temporary folder named after the benchmark; created. The caller removes a
    /// temporary one when done.
    static func scratchFolder(_ label: String, dir: String?) throws -> String {
        let folder = dir ?? FileManager.default.temporaryDirectory.appendingPathComponent("gnt-move-bench-\(label)-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        return folder
    }

    /// `text` padded to `width` characters, for a table.
    static func column(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }

    /// This executable, which runs the agents and disk daemons of a move benchmark.
    static var executable: String {
        (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    }

    struct Stream: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move one file over loopback with gnt-move, with Ganeti's socat pipeline and with nbdcopy into nbdkit; print MB/s and ratios.",
            discussion: "Build with -c release first. Needs socat, gzip and zstd, and twice --size free in --dir; nbdcopy and nbdkit (libnbd-bin, nbdkit) for the nbdcopy baseline, which is skipped with a line saying so without them.")

        @Option(help: "Bytes per test file (K, M, G suffixes).") var size = ByteSize(bytes: 2 << 30)
        @Option(help: "Folder for the test files (default: a new temporary folder, removed afterwards).") var dir: String?
        @Option(help: "Repeat each measurement this many times and keep the median.") var runs = 1
        @Option(help: ArgumentHelp("Compression modes to run, comma-separated (\(CompressionMethod.acceptedNames)).", valueName: "LIST"))
        var modes = "none,gzip,zstd"
        @Option(name: .customLong("sparse-size"), help: "Size of the sparse image for the gnt-move/1 comparison (K, M, G suffixes).") var sparseSize = ByteSize(bytes: 8 << 30)
        @Option(name: .customLong("sparse-data"), help: "Bytes of data in the sparse image (K, M, G suffixes).") var sparseData = ByteSize(bytes: 80 << 20)
        @Option(help: ArgumentHelp("Comparisons to run, comma-separated: socat (Ganeti's stream against Ganeti's socat pipeline), v1 (gnt-move/1 scenarios), nbdcopy (against nbdcopy into nbdkit).", valueName: "LIST"))
        var suites = "socat,v1,nbdcopy"

        /// The comparisons `--suites` names.
        enum Suite: String, CaseIterable {
            case socat, v1, nbdcopy
        }

        /// `--suites`, each checked.
        var suiteList: Set<Suite> {
            get throws {
                Set(try suites.split(separator: ",").map { name in
                    guard let suite = Suite(rawValue: String(name)) else {
                        throw ValidationError("--suites: '\(name)' is not one of \(Suite.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    return suite
                })
            }
        }

        /// `--modes`, each checked.
        var compressions: [CompressionMethod] {
            get throws {
                try modes.split(separator: ",").map { name in
                    guard let method = CompressionMethod(rawValue: String(name)) else {
                        throw ValidationError("--modes: '\(name)' is not one of \(CompressionMethod.acceptedNames)")
                    }
                    return method
                }
            }
        }

        func validate() throws { _ = try compressions; _ = try suiteList }

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
            let modeList = try compressions
            let chosen = try suiteList
            var table = BenchmarkTable()
            for data in chosen.contains(.socat) ? ["compressible", "random"] : [] {
                let source = folder + "/\(data).img"
                Console.error("preparing \(size) of \(data) data")
                if data == "compressible" { try benchmark.makeCompressible(source) } else { try benchmark.makeRandom(source) }
                var gntMoveRates: [CompressionMethod: Double] = [:]
                for mode in modeList {
                    let ours = try median((0..<max(1, runs)).map { _ in try benchmark.runGntMove(source: source, compression: mode, data: data, streamProtocol: .ganeti) })
                    let theirs = try median((0..<max(1, runs)).map { _ in try benchmark.runSocat(source: source, compression: mode, data: data) })
                    Console.error(String(format: "%@ %@: gnt-move %.0f MB/s, socat %.0f MB/s", data, mode.rawValue, ours, theirs))
                    gntMoveRates[mode] = ours
                    let target: Double = [CompressionMethod.none: 1.3, .gzip: 2.0, .zstd: 1.5][mode] ?? 1.0
                    let baseline = switch mode {
                    case .none: "socat"
                    case .zstd: "socat + zstd -1"
                    case .gzipSlow: "socat + gzip"
                    case .gzip, .gzipFast: "socat + gzip -1"
                    }
                    table.rows.append(.init(label: "\(data), \(mode)", candidate: ours, baseline: theirs, baselineName: baseline,
                                            target: data == "random" && mode != CompressionMethod.none ? 0 : target))
                }
                if data == "random", let zstd = gntMoveRates[.zstd], let none = gntMoveRates[CompressionMethod.none] {
                    table.rows.append(.init(label: "random, zstd vs own none", candidate: zstd, baseline: none, baselineName: "gnt-move none", target: 0.8))
                }
                try? FileManager.default.removeItem(atPath: source)
            }
            if chosen.contains(.socat) {
                print("Ganeti stream (v0) against Ganeti's socat pipeline: \(size) per file, median of \(max(1, runs)) run(s), loopback, destination fsynced by both")
                print(table.rendered)
                print("")
            }
            if chosen.contains(.v1) {
                print(try runV1(folder: folder, keys: benchmark.keys))
                print("")
            }
            if chosen.contains(.nbdcopy) { print(try runAgainstNbdcopy(folder: folder, keys: benchmark.keys)) }
        }

        /// gnt-move (gnt-move/1 and Ganeti's stream, uncompressed) against nbdcopy into nbdkit over
        /// mutually verified TLS: dense random data, and a sparse image with 1% data in 1 MiB extents.
        private func runAgainstNbdcopy(folder: String, keys: StreamBenchmark.Keys) throws -> String {
            guard StreamBenchmark.nbdTools != nil else {
                return "nbdcopy baseline: skipped: nbdcopy or nbdkit is not installed (Debian: libnbd-bin, nbdkit; scripts/setup installs them)"
            }
            var table = BenchmarkTable()
            let dense = StreamBenchmark(executable: BenchCommand.executable, directory: folder, keys: keys, size: size.bytes, log: { Console.error($0) })
            let random = folder + "/random-nbd.img"
            Console.error("preparing \(size) of random data for the nbdcopy comparison")
            try dense.makeRandom(random)
            let denseRuns = try alternating([
                { try dense.runNbdcopy(source: random, data: "random") },
                { try dense.runGntMove(source: random, compression: .none, data: "random", streamProtocol: .v1) },
                { try dense.runGntMove(source: random, compression: .none, data: "random", streamProtocol: .ganeti) },
            ])
            let (nbdcopy, v1, v0) = (denseRuns[0], denseRuns[1], denseRuns[2])
            try? FileManager.default.removeItem(atPath: random)
            table.rows.append(.init(label: "\(size) random, gnt-move/1 (verified, journaled)", candidate: v1, baseline: nbdcopy, baselineName: "nbdcopy", target: 1.1))
            table.rows.append(.init(label: "\(size) random, Ganeti stream", candidate: v0, baseline: nbdcopy, baselineName: "nbdcopy", target: 1.3))

            // One instance with 4 disks (a quarter of --size each) moved at once, against 4
            // nbdcopy runs at once.
            let quarter = size.bytes / 4
            let disks = try (0..<4).map { index -> (StreamBenchmark, String) in
                let diskFolder = folder + "/disk\(index)"
                try FileManager.default.createDirectory(atPath: diskFolder, withIntermediateDirectories: true)
                let bench = StreamBenchmark(executable: BenchCommand.executable, directory: diskFolder, keys: keys, size: quarter, log: { Console.error($0) })
                try bench.makeRandom(diskFolder + "/random.img")
                return (bench, diskFolder + "/random.img")
            }
            let benches = disks.map(\.0)
            let fourRuns = try alternating([
                { try StreamBenchmark.together(benches, data: "random") { try $0.runNbdcopy(source: $0.directory + "/random.img", data: "random") } },
                { try StreamBenchmark.together(benches, data: "random") {
                    try $0.runGntMove(source: $0.directory + "/random.img", compression: .none, data: "random", streamProtocol: .v1)
                } },
            ])
            let (fourNbd, fourV1) = (fourRuns[0], fourRuns[1])
            for (_, path) in disks { try? FileManager.default.removeItem(atPath: path) }
            table.rows.append(.init(label: "4 disks × \(ByteSize(bytes: quarter)) random at once, gnt-move/1", candidate: fourV1, baseline: fourNbd,
                                    baselineName: "4 × nbdcopy", target: 1.1))

            let corpus = folder + "/corpus-nbd.img"
            try dense.makeCompressible(corpus)
            let sparseBench = StreamBenchmark(executable: BenchCommand.executable, directory: folder, keys: keys, size: sparseSize.bytes, log: { Console.error($0) })
            let sparse = folder + "/sparse-nbd.img"
            let dataBytes = max(sparseSize.bytes / 100, 1 << 20)
            Console.error("preparing a \(sparseSize) sparse image with 1% data for the nbdcopy comparison")
            try sparseBench.makeSparse(sparse, dataBytes: dataBytes, from: corpus)
            try? FileManager.default.removeItem(atPath: corpus)
            let sparseRuns = try alternating([
                { try sparseBench.runNbdcopy(source: sparse, data: "sparse") },
                { try sparseBench.runGntMove(source: sparse, compression: .none, data: "sparse", streamProtocol: .v1) },
            ])
            let (sparseNbd, sparseV1) = (sparseRuns[0], sparseRuns[1])
            try? FileManager.default.removeItem(atPath: sparse)
            table.rows.append(.init(label: "\(sparseSize) sparse, 1% data, gnt-move/1", candidate: sparseV1, baseline: sparseNbd, baselineName: "nbdcopy", target: 1.0))
            return "Against nbdcopy into nbdkit (file plugin, --tls=require --tls-verify-peer, nbdcopy --flush), median of \(max(1, runs)) alternating run(s), loopback; CPU seconds per GiB on the sending / receiving side\n"
                + table.rendered
        }

        /// gnt-move/1 against the Ganeti stream: a sparse image, dense mixed data with zstd, and
        /// resuming at 90%.
        private func runV1(folder: String, keys: StreamBenchmark.Keys) throws -> String {
            let executable = CommandLine.arguments[0].hasPrefix("/") ? CommandLine.arguments[0] : FileManager.default.currentDirectoryPath + "/" + CommandLine.arguments[0]
            let compressible = folder + "/corpus.img"
            let corpusBench = StreamBenchmark(executable: executable, directory: folder, keys: keys, size: size.bytes, log: { Console.error($0) })
            try corpusBench.makeCompressible(compressible)
            defer { try? FileManager.default.removeItem(atPath: compressible) }
            var table = BenchmarkTable()

            let sparseBench = StreamBenchmark(executable: executable, directory: folder, keys: keys, size: sparseSize.bytes, log: { Console.error($0) })
            let sparse = folder + "/sparse.img"
            Console.error("preparing a \(sparseSize) sparse image with \(sparseData) of data")
            try sparseBench.makeSparse(sparse, dataBytes: sparseData.bytes, from: compressible)
            let v1Sparse = try median((0..<max(1, runs)).map { _ in try sparseBench.runGntMove(source: sparse, compression: .none, data: "sparse", streamProtocol: .v1) })
            let v0Sparse = try median((0..<max(1, runs)).map { _ in try sparseBench.runGntMove(source: sparse, compression: .none, data: "sparse", streamProtocol: .ganeti) })
            try? FileManager.default.removeItem(atPath: sparse)
            table.rows.append(.init(label: "sparse \(sparseSize) with \(sparseData) data, v1", candidate: v1Sparse, baseline: v0Sparse,
                                    baselineName: "gnt-move v0 none", target: 20))

            let mixed = folder + "/mixed.img"
            Console.error("preparing \(size) of dense mixed data")
            try corpusBench.makeMixed(mixed, from: compressible)
            let v1Mixed = try median((0..<max(1, runs)).map { _ in try corpusBench.runGntMove(source: mixed, compression: .zstd, data: "mixed", streamProtocol: .v1) })
            let v0Mixed = try median((0..<max(1, runs)).map { _ in try corpusBench.runGntMove(source: mixed, compression: .zstd, data: "mixed", streamProtocol: .ganeti) })
            let socatMixed = try median((0..<max(1, runs)).map { _ in try corpusBench.runSocat(source: mixed, compression: .zstd, data: "mixed") })
            table.rows.append(.init(label: "dense mixed, v1 zstd", candidate: v1Mixed, baseline: v0Mixed, baselineName: "gnt-move v0 zstd", target: 0.8))
            table.rows.append(.init(label: "dense mixed, v1 zstd", candidate: v1Mixed, baseline: socatMixed, baselineName: "socat + zstd -1", target: 1.5))

            // Resume at 90%: a full v1 transfer, then one stopped at 90% and resumed, alternating
            // for --runs rounds; the resumed run's speed is the disk size over its own time.
            let resumeRuns = try alternating([
                { try corpusBench.runGntMove(source: mixed, compression: .none, data: "mixed", streamProtocol: .v1) },
                {
                    _ = try corpusBench.runGntMove(source: mixed, compression: .none, data: "mixed", streamProtocol: .v1,
                                                   adjustExporter: { $0.abortAfter = size.bytes / 10 * 9 }, expectFailure: true)
                    return try corpusBench.runGntMove(source: mixed, compression: .none, data: "mixed", streamProtocol: .v1,
                                                      keepDestination: true, adjustExporter: { $0.resume = true })
                },
            ])
            let (full, resumed) = (resumeRuns[0], resumeRuns[1])
            try? FileManager.default.removeItem(atPath: mixed)
            table.rows.append(.init(label: "resume at 90% (time \(String(format: "%.2f", resumed.seconds)) s vs \(String(format: "%.2f", full.seconds)) s: \(String(format: "%.0f", 100 * resumed.seconds / full.seconds))%)",
                                    candidate: resumed.megabytesPerSecond, baseline: full.megabytesPerSecond,
                                    baselineName: "full v1 transfer", target: 1 / 0.15))
            return "gnt-move/1 (v1) scenarios, median of \(max(1, runs)) run(s)\n" + table.rendered
        }

        private func median(_ values: [StreamBenchmark.Measurement]) -> Double { medianRun(values).megabytesPerSecond }

        /// Runs each measurement once per round, in turn, for `--runs` rounds (so that a slow
        /// spell of the machine or its disk falls on all of them), and keeps each one's median run.
        private func alternating(_ measurements: [() throws -> StreamBenchmark.Measurement]) throws -> [StreamBenchmark.Measurement] {
            var results = Array(repeating: [StreamBenchmark.Measurement](), count: measurements.count)
            for _ in 0..<max(1, runs) {
                for (index, measure) in measurements.enumerated() {
                    let run = try measure()
                    Console.error(String(format: "  %@ %@: %.2f s, %.0f MB/s, CPU-s/GiB %@", run.tool, run.data, run.seconds, run.megabytesPerSecond, run.cpuPerGiB))
                    results[index].append(run)
                }
            }
            return results.map(medianRun)
        }

        /// The run with the median rate.
        private func medianRun(_ values: [StreamBenchmark.Measurement]) -> StreamBenchmark.Measurement {
            let sorted = values.sorted { $0.megabytesPerSecond < $1.megabytesPerSecond }
            return sorted[sorted.count / 2]
        }
    }
}
