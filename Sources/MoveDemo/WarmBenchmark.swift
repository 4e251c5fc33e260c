import BlockStream
import Foundation
import MoveCoordinator
import MoveTrust
import OpenSSLSupport

/// `gnt-move bench warm`: one running instance moved between two loopback agents at a bandwidth
/// limit, cold (stop, then copy everything) and warm (copy while it runs, then stop and send what
/// changed). Between the warm move's pre-copy and the stop of the source, a share of the disk's
/// chunks is overwritten, as a running VM would. Reported: the downtime of each (from the stop of
/// the source until the destination holds the verified copy and started it) and their ratio.
public struct WarmBenchmark: Sendable {
    public struct Result: Sendable {
        public let label: String
        public let state: MoveState
        public let seconds: Double
        public let downtime: Double
        /// Bytes the final pass sent (the whole disk for a cold move).
        public let finalPassBytes: Int64
        public let identical: Bool
    }

    let executable: String
    let size: Int64
    let bandwidthLimit: Int64
    /// The share of chunks changed between the pre-copy and the stop.
    let changedShare: Double
    let log: @Sendable (String) -> Void

    public init(executable: String, size: Int64, bandwidthLimit: Int64, changedShare: Double, log: @escaping @Sendable (String) -> Void) {
        (self.executable, self.size, self.bandwidthLimit, self.changedShare, self.log) = (executable, size, bandwidthLimit, changedShare, log)
    }

    public func run(folder: String) async throws -> [Result] {
        log("writing \(size >> 20) MiB of random data")
        let (clusters, image) = try await LoopbackClusters.started(folder: folder, executable: executable, instance: "bench-vm", size: size) {
            try CutBenchmark.writeRandom($0, size: size)
        }
        defer { clusters.stop() }
        let source = try RAPIClient(endpoint: clusters.endpoints[0])
        var results: [Result] = []
        for warm in [false, true] {
            let label = warm ? "warm" : "cold"
            // The source runs before each move (a kept source is left stopped by the one before).
            if (try await source.instance("bench-vm"))["oper_state"]?.boolValue != true {
                _ = try await source.pollJob(try await source.startup("bench-vm"))
            }
            var request = MoveRequest(source: clusters.endpoints[0], destination: clusters.endpoints[1], instance: "bench-vm")
            request.destinationName = "bench-vm-\(label)"
            request.keepSourceInstance = true
            request.bandwidthLimit = bandwidthLimit
            request.warm = warm
            log("\(label): moving \(size >> 20) MiB at \(bandwidthLimit / 1_000_000) MB/s")
            let changing = ChunkScribbler(path: image, size: size, share: changedShare)
            let coordinator = Coordinator(store: try MoveStore(directory: folder + "/coordinator-\(label)")) { event in
                // The pre-copy is done and the source not yet stopped: the "running" VM writes.
                if event.fields["step"]?.stringValue == "precopy-done" { changing.scribble() }
            }
            let started = Monotonic.now()
            let record = await coordinator.run(request)
            let seconds = Monotonic.now() - started
            let moved = clusters.diskFolder(1) + "/bench-vm-\(label).disk0"
            let identical = record.state == .done && (try? Demo.sha256(moved)) == (try? Demo.sha256(image))
            results.append(Result(label: label, state: record.state, seconds: seconds, downtime: record.facts.downtimeSeconds ?? .nan,
                                  finalPassBytes: try await clusters.changedBytes(of: record), identical: identical))
            if warm { log("warm: \(changing.changed) chunks changed between the pre-copy and the stop") }
        }
        return results
    }
}

/// Overwrites a share of a disk image's chunks with random data, once.
final class ChunkScribbler: @unchecked Sendable {
    let path: String
    let size: Int64
    let share: Double
    private(set) var changed = 0

    init(path: String, size: Int64, share: Double) {
        (self.path, self.size, self.share) = (path, size, share)
    }

    func scribble() {
        guard changed == 0, let handle = FileHandle(forUpdatingAtPath: path) else { return }
        defer { try? handle.close() }
        let chunk = Int64(V1Protocol.chunkSize)
        let chunks = Int((size + chunk - 1) / chunk)
        var picked = Set<Int>()
        let wanted = max(1, Int(Double(chunks) * share))
        while picked.count < wanted { picked.insert(Int.random(in: 0..<chunks)) }
        for index in picked.sorted() {
            let offset = Int64(index) * chunk
            try? handle.seek(toOffset: UInt64(offset))
            try? handle.write(contentsOf: Data(SecureRandom.bytes(Int(min(chunk, size - offset)))))
        }
        changed = picked.count
    }
}
