import ArgumentParser
import Foundation
import MoveCoordinator
import MoveDemo

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Two local clusters on loopback and one real move of a generated 1 GiB sparse image.")

    @Option(help: "Size of the generated disk image (K, M, G suffixes).") var size = ByteSize(bytes: 1 << 30)
    @Option(help: ArgumentHelp("Keep the agents, images and state in this folder (default: a temporary folder, removed).", valueName: "DIR"))
    var keep: String?
    @Flag(help: "JSON-lines events on stdout.") var json = false

    func run() async throws {
        let printer = EventPrinter(json: json)
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let demo = Demo(executable: executable, size: size.bytes, log: { Console.error("demo: \($0)") }, events: printer.print)
        do {
            let summary = try await demo.run(keep: keep)
            print(String(format: "demo: moved %@ in %.2f s (%.0f MB/s of disk), %@ on the wire, content %@",
                         "\(size)", summary.seconds, summary.megabytesPerSecond, Self.bytes(summary.wireBytes),
                         summary.digestsMatch ? "verified identical (sha256)" : "NOT identical"))
            guard summary.state == .done, summary.digestsMatch else { throw ExitCode(1) }
        } catch let error as ExitCode { throw error } catch {
            Console.error("gnt-move: demo failed: \(error)")
            throw ExitCode(1)
        }
    }

    static func bytes(_ count: Int64) -> String {
        count >= 1 << 20 ? String(format: "%.1f MiB", Double(count) / 1_048_576) : "\(count) bytes"
    }
}
