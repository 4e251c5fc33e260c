import ArgumentParser
import Foundation
import MoveDemo

extension BenchCommand {
    struct Warm: AsyncReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Move one running instance cold and warm between two loopback agents; print each downtime and their ratio.",
            discussion: """
            Each run is a real move with the coordinator (gnt-move/1, --bwlimit per disk). Between the warm \
            move's pre-copy and the stop of the source, --changed of the disk's 1 MiB chunks are overwritten \
            with random data. Downtime runs from the coordinator's stop of the source until the destination \
            holds the verified copy and started it. Target: warm at most 0.25x the cold downtime. Build with \
            -c release first; needs 3x --size free in --dir.
            """)

        @Option(help: "Size of the instance's one disk, random data (K, M, G suffixes).") var size = ByteSize(bytes: 1 << 30)
        @Option(help: "Bandwidth limit of the data connection in bytes per second (K, M, G suffixes).") var bwlimit = ByteSize(bytes: 100_000_000)
        @Option(help: "Share of the chunks changed between the pre-copy and the stop, in percent.") var changed = 5.0
        @Option(help: "Folder for the agents and images (default: a new temporary folder, removed afterwards).") var dir: String?

        func validate() throws {
            if !(0...100).contains(changed) { throw ValidationError("--changed must be a percentage from 0 to 100") }
        }

        func execute() async throws {
            let folder = try BenchCommand.scratchFolder("warm", dir: dir)
            defer { if dir == nil { try? FileManager.default.removeItem(atPath: folder) } }
            let executable = BenchCommand.executable
            let benchmark = WarmBenchmark(executable: executable, size: size.bytes, bandwidthLimit: bwlimit.bytes, changedShare: changed / 100,
                                          log: { Console.error("bench warm: \($0)") })
            let results = try await benchmark.run(folder: folder)
            guard let cold = results.first else { return }
            print("Warm against cold: \(size) of random data, \(bwlimit)/s, loopback, gnt-move/1; \(changed)% of the chunks changed before the stop")
            let column = BenchCommand.column
            print(column("move", 6) + column("state", 7) + "seconds  downtime  downtime/cold  final pass MiB  identical")
            for result in results {
                print(column(result.label, 6) + column(result.state.rawValue, 7)
                      + String(format: "%7.2f  %8.2f  %12.2fx  %14.1f  ", result.seconds, result.downtime, result.downtime / cold.downtime,
                               Double(result.finalPassBytes) / 1_048_576)
                      + (result.identical ? "yes" : "NO"))
            }
            if results.contains(where: { !$0.identical }) { throw ExitCode(1) }
        }
    }
}
