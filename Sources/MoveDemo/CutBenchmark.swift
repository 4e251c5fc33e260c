import BlockStream
import Foundation
import MoveCoordinator
import MoveTrust
import OpenSSLSupport
import Synchronization

/// `gnt-move bench cut`: one dense instance moved between two loopback agents at a bandwidth
/// limit, first uncut, then with its data connection reset (both sockets, `ss -K`) once at half
/// of the uncut time, then five times. Each run is a real move with the coordinator; the report
/// is the time against the uncut move and the bytes on the wire against the disk's data.
public struct CutBenchmark: Sendable {
    public struct Scenario: Sendable {
        public let label: String
        /// When to cut, as fractions of the uncut transfer's time after the data connection opened.
        public let cutsAt: [Double]
    }

    public struct Result: Sendable {
        public let scenario: Scenario
        public let seconds: Double
        public let wireBytes: Int64
        public let cutsMade: Int
        public let resumes: Int
        public let state: MoveState
        public let identical: Bool
    }

    public static let scenarios = [
        Scenario(label: "uncut", cutsAt: []),
        Scenario(label: "1 cut at 50%", cutsAt: [0.5]),
        Scenario(label: "5 cuts", cutsAt: [0.15, 0.3, 0.45, 0.6, 0.75]),
    ]

    let executable: String
    let size: Int64
    let bandwidthLimit: Int64
    let log: @Sendable (String) -> Void

    public init(executable: String, size: Int64, bandwidthLimit: Int64, log: @escaping @Sendable (String) -> Void) {
        (self.executable, self.size, self.bandwidthLimit, self.log) = (executable, size, bandwidthLimit, log)
    }

    public func run(folder: String) async throws -> [Result] {
        log("writing \(size >> 20) MiB of random data")
        let (clusters, image) = try await LoopbackClusters.started(folder: folder, executable: executable, instance: "bench-vm", size: size) {
            try Self.writeRandom($0, size: size)
        }
        defer { clusters.stop() }
        let digest = try Demo.sha256(image)
        var results: [Result] = []
        var uncutTransfer: Double?
        for (index, scenario) in Self.scenarios.enumerated() {
            log("\(scenario.label): moving \(size >> 20) MiB at \(bandwidthLimit / 1_000_000) MB/s")
            let resumes = Atomic<Int>(0)
            var request = MoveRequest(source: clusters.endpoints[0], destination: clusters.endpoints[1], instance: "bench-vm")
            request.destinationName = "bench-vm-\(index)"
            request.keepSourceInstance = true
            request.bandwidthLimit = bandwidthLimit
            let coordinator = Coordinator(store: try MoveStore(directory: folder + "/coordinator-\(index)")) { event in
                if event.fields["step"]?.stringValue == "resume-transfer" { resumes.add(1, ordering: .relaxed) }
            }
            let cutter = Cutter(statusFolder: clusters.importExportFolder(1))
            let started = Monotonic.now()
            let cutting = Task.detached { [uncutTransfer] in
                cutter.cut(at: scenario.cutsAt.map { $0 * (uncutTransfer ?? 0) })
            }
            let record = await coordinator.run(request)
            let seconds = Monotonic.now() - started
            let cutsMade = await cutting.value
            if scenario.cutsAt.isEmpty, let opened = cutter.connectedAt { uncutTransfer = Monotonic.now() - opened }
            let moved = clusters.diskFolder(1) + "/bench-vm-\(index).disk0"
            let identical = record.state == .done && (try? Demo.sha256(moved)) == digest
            results.append(Result(scenario: scenario, seconds: seconds, wireBytes: try await clusters.wireBytes(of: record), cutsMade: cutsMade,
                                  resumes: resumes.load(ordering: .relaxed), state: record.state, identical: identical))
            // Room for the next run: the moved copy is removed from beta.
            let destination = try RAPIClient(endpoint: clusters.endpoints[1])
            if let job = try? await destination.deleteInstance("bench-vm-\(index)") { _ = try? await destination.pollJob(job) }
        }
        return results
    }

    static func writeRandom(_ path: String, size: Int64) throws {
        guard FileManager.default.createFile(atPath: path, contents: nil), let out = FileHandle(forWritingAtPath: path) else {
            throw CoordinatorError(reason: .demo, message: "cannot create \(path)")
        }
        defer { try? out.close() }
        var written: Int64 = 0
        while written < size {
            let count = Int(min(8 << 20, size - written))
            try out.write(contentsOf: Data(SecureRandom.bytes(count)))
            written += Int64(count)
        }
    }
}

/// Resets the data connection of beta's importer at given times after it connected.
final class Cutter: @unchecked Sendable {
    let statusFolder: String
    private let lock = NSLock()
    private var opened: Double?

    init(statusFolder: String) { self.statusFolder = statusFolder }

    var connectedAt: Double? { lock.withLock { opened } }

    /// Waits for the importer to connect, then cuts at each delay (seconds after it connected);
    /// returns how many cuts reset a connection.
    func cut(at delays: [Double]) -> Int {
        var port: Int?
        let deadline = Monotonic.now() + 120
        while port == nil, Monotonic.now() < deadline {
            let folders = (try? FileManager.default.contentsOfDirectory(atPath: statusFolder)) ?? []
            for name in folders where name.hasPrefix("import-disk0-") {
                if let status = try? ImportExportStatus.load(path: statusFolder + "/\(name)/status"), status.connected == true {
                    port = status.listen_port
                }
            }
            if port == nil { usleep(20_000) }
        }
        guard let port else { return 0 }
        let start = Monotonic.now()
        lock.withLock { opened = start }
        var made = 0
        for delay in delays {
            let wait = start + delay - Monotonic.now()
            if wait > 0 { usleep(UInt32(min(wait, 3600) * 1e6)) }
            // The connection may be coming back from the previous cut: wait for it (briefly).
            let giveUp = Monotonic.now() + 10
            while Monotonic.now() < giveUp {
                if Self.resetConnections(port: port) {
                    made += 1
                    break
                }
                usleep(20_000)
            }
        }
        return made
    }

    /// `ss -K` on every TCP socket to or from `port`.
    static func resetConnections(port: Int) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/ss")
        process.arguments = ["-K", "-t", "-n", "( sport = :\(port) or dport = :\(port) )"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        return text.contains("ESTAB")
    }
}
