import BlockStream
import ClusterAgent
import Foundation
import MoveCoordinator
import OpenSSLSupport

/// `gnt-move demo`: with nothing configured, starts two agents on loopback in a temporary
/// folder, adopts a generated 1 GiB sparse image with real data on the first, moves it to the
/// second with the coordinator, verifies the content and cleans up.
public struct Demo {
    public struct Summary: Sendable {
        public let seconds: Double
        public let diskBytes: Int64
        public let wireBytes: Int64
        public let digestsMatch: Bool
        public let state: MoveState
        public var megabytesPerSecond: Double { Double(diskBytes) / 1e6 / seconds }
    }

    let executable: String
    let size: Int64
    let log: @Sendable (String) -> Void
    let events: @Sendable (MoveEvent) -> Void

    public init(executable: String, size: Int64 = 1 << 30, log: @escaping @Sendable (String) -> Void,
                events: @escaping @Sendable (MoveEvent) -> Void) {
        self.executable = executable
        self.size = size
        self.log = log
        self.events = events
    }

    public func run(keep folderToKeep: String? = nil) async throws -> Summary {
        let folder = folderToKeep ?? FileManager.default.temporaryDirectory.appendingPathComponent("gnt-move-demo-\(UUID().uuidString.prefix(8))").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        defer { if folderToKeep == nil { try? FileManager.default.removeItem(atPath: folder) } }
        log("demo folder \(folder)")
        log("generating a \(size >> 20) MiB sparse image with real data")
        let (clusters, image) = try await LoopbackClusters.started(folder: folder, executable: executable, instance: "demo-vm", size: size) {
            try Self.makeImage($0, size: size)
        }
        defer { clusters.stop() }
        let digest = try Self.sha256(image)
        log("clusters alpha (127.0.0.1:\(clusters.endpoints[0].port)) and beta (127.0.0.1:\(clusters.endpoints[1].port)) are up")

        var request = MoveRequest(source: clusters.endpoints[0], destination: clusters.endpoints[1], instance: "demo-vm")
        request.compress = .zstd
        let coordinator = Coordinator(store: try MoveStore(directory: folder + "/coordinator"), emit: events)
        let started = Monotonic.now()
        let result = await coordinator.run(request)
        let seconds = Monotonic.now() - started
        let wire = try await clusters.wireBytes(of: result)
        let moved = clusters.diskFolder(1) + "/demo-vm.disk0"
        let movedDigest = FileManager.default.fileExists(atPath: moved) ? try Self.sha256(moved) : ""
        let match = result.state == .done && movedDigest == digest
        return Summary(seconds: seconds, diskBytes: size, wireBytes: wire, digestsMatch: match, state: result.state)
    }

    /// A sparse image: 1 MiB extents of this machine's binaries spread over it, 1/16 of it data.
    static func makeImage(_ path: String, size: Int64) throws {
        _ = FileManager.default.createFile(atPath: path, contents: nil)
        guard let out = FileHandle(forWritingAtPath: path) else { throw CoordinatorError(reason: .demo, message: "cannot create \(path)") }
        defer { try? out.close() }
        try out.truncate(atOffset: UInt64(size))
        var corpus = Data()
        for folder in ["/usr/bin", "/usr/lib/x86_64-linux-gnu"] {
            for name in ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted() {
                if let data = FileManager.default.contents(atPath: folder + "/" + name) { corpus.append(data) }
                if corpus.count >= Int(size / 16) { break }
            }
            if corpus.count >= Int(size / 16) { break }
        }
        if corpus.isEmpty { corpus = Data(SecureRandom.bytes(Int(size / 16))) }
        let extent = 1 << 20
        let extents = max(1, Int(size / 16) / extent)
        let stride = size / Int64(extents)
        for index in 0..<extents {
            let start = (index * extent) % max(1, corpus.count - extent)
            try out.seek(toOffset: UInt64(Int64(index) * stride))
            try out.write(contentsOf: corpus[corpus.startIndex + start ..< corpus.startIndex + min(corpus.count, start + extent)])
        }
    }

    static func sha256(_ path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else { throw CoordinatorError(reason: .demo, message: "cannot read \(path)") }
        defer { try? handle.close() }
        let digest = IncrementalDigest(.sha256)
        while let chunk = try handle.read(upToCount: 8 << 20), !chunk.isEmpty { chunk.withUnsafeBytes { digest.update($0) } }
        return Hex.encode(digest.snapshot())
    }
}
