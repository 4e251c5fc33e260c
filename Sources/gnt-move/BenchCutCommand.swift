import ArgumentParser
import Foundation
import MoveDemo

extension BenchCommand {
    struct Cut: AsyncReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move one instance between two loopback agents uncut, cut once at 50%, and cut five times; print time and wire ratios.",
            discussion: """
            Each run is a real move with the coordinator (gnt-move/1, --bwlimit per disk). A cut resets both \
            sockets of the data connection with `ss -K` (root, iproute2); the transfer continues from the \
            importer's journal. Targets: one cut at most 1.15x the uncut time; five cuts still done with wire \
            bytes at most 1.1x the disk's data. Build with -c release first; needs 2x --size free in --dir.
            """)

        @Option(help: "Size of the instance's one disk, random data (K, M, G suffixes).") var size = ByteSize(bytes: 2 << 30)
        @Option(help: "Bandwidth limit of the data connection in bytes per second (K, M, G suffixes).") var bwlimit = ByteSize(bytes: 100_000_000)
        @Option(help: "Folder for the agents and images (default: a new temporary folder, removed afterwards).") var dir: String?

        func execute() async throws {
            guard FileManager.default.isExecutableFile(atPath: "/usr/bin/ss") else {
                print("bench cut: skipped: ss (iproute2) is not installed; it resets the data connection")
                return
            }
            let folder = try BenchCommand.scratchFolder("cut", dir: dir)
            defer { if dir == nil { try? FileManager.default.removeItem(atPath: folder) } }
            let executable = BenchCommand.executable
            let benchmark = CutBenchmark(executable: executable, size: size.bytes, bandwidthLimit: bwlimit.bytes, log: { Console.error("bench cut: \($0)") })
            let results = try await benchmark.run(folder: folder)
            guard let uncut = results.first else { return }
            print("Broken data connections: \(size) of random data, \(bwlimit)/s, loopback, gnt-move/1; each cut resets both sockets (ss -K)")
            let column = BenchCommand.column
            print(column("scenario", 14) + column("state", 7) + "cuts  resumed  seconds  time/uncut  wire/data  identical")
            for result in results {
                print(column(result.scenario.label, 14) + column(result.state.rawValue, 7)
                      + String(format: "%4d  %7d  %7.2f  %9.2fx  %8.3fx  ", result.cutsMade, result.resumes, result.seconds,
                               result.seconds / uncut.seconds, Double(result.wireBytes) / Double(size.bytes))
                      + (result.identical ? "yes" : "NO"))
            }
            if results.contains(where: { !$0.identical }) { throw ExitCode(1) }
        }
    }
}
