import BlockStream
import ClusterAgent
import Foundation
import MoveCoordinator
import MoveTrust

/// Two gnt-move agents on loopback, `alpha` and `beta`, sharing one cluster domain secret, each
/// served by its own `gnt-move agent serve` process: what the demo and the move benchmarks run on.
final class LoopbackClusters: @unchecked Sendable {
    let folder: String
    let executable: String
    let names = ["alpha", "beta"]
    private(set) var endpoints: [ClusterEndpoint] = []
    private var servers: [Process] = []

    init(folder: String, executable: String) throws {
        self.folder = folder
        self.executable = executable
        let secret = folder + "/cluster-domain-secret"
        try ClusterDomainSecret.write(to: secret, force: false)
        for name in names {
            let port = try TCPListener(bind: "127.0.0.1", port: 0, family: .ipv4).port
            var options = AgentInitializer.Options(clusterName: name, hypervisorDriver: .fake)
            options.port = port
            options.bind = "127.0.0.1"
            options.dataAddress = "127.0.0.1"
            options.nodeName = "node1.\(name).example"
            options.secretFile = secret
            let paths = AgentPaths(root: folder + "/" + name)
            try AgentInitializer.initialize(paths: paths, options: options)
            var endpoint = ClusterEndpoint(host: "127.0.0.1", port: port, caFile: paths.rapiCertificate, username: "gnt-move")
            endpoint.passwordFile = paths.root + "/password"
            try endpoint.loadCredentials(role: name)
            endpoints.append(endpoint)
        }
    }

    /// Both agents serving, with one running instance `name` on alpha whose one disk image (of
    /// `size` bytes) `fill` writes; returns them and the image's path. Stop them when done.
    static func started(folder: String, executable: String, instance name: String, size: Int64,
                        fill: (String) throws -> Void) async throws -> (LoopbackClusters, image: String) {
        let clusters = try LoopbackClusters(folder: folder, executable: executable)
        do {
            let image = clusters.diskFolder(0) + "/\(name).img"
            try fill(image)
            try await clusters.adopt(name, image: image, size: size)
            try await clusters.start()
            return (clusters, image)
        } catch {
            clusters.stop()
            throw error
        }
    }

    /// Where cluster `index` keeps its disks.
    func diskFolder(_ index: Int) -> String { folder + "/" + names[index] + "/disks" }

    /// Where cluster `index` runs its disk daemons.
    func importExportFolder(_ index: Int) -> String { folder + "/" + names[index] + "/import-export" }

    /// Adopts `image` on alpha as instance `name`, running (before the agents serve).
    func adopt(_ name: String, image: String, size: Int64) async throws {
        let service = try ClusterAgentService(paths: AgentPaths(root: folder + "/alpha"))
        try await service.adopt(spec: InstanceSpec(name: name, diskTemplate: "file", disks: [.init(size: size >> 20)],
                                                   nics: [.init(mac: "aa:00:00:de:00:01", mode: "bridged", link: "br0")],
                                                   hypervisor: "kvm", beparams: ["maxmem": .int(512), "vcpus": .int(1)], tags: ["demo"]),
                                diskPaths: [image], running: true)
    }

    /// Starts both agents and waits until they answer.
    func start() async throws {
        for name in names {
            let server = Process()
            server.executableURL = URL(fileURLWithPath: executable)
            server.arguments = ["agent", "serve", "--dir", folder + "/" + name]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle(forWritingAtPath: "/dev/null")
            try server.run()
            servers.append(server)
        }
        for endpoint in endpoints {
            let client = try RAPIClient(endpoint: endpoint)
            var up = false
            for _ in 0..<200 where !up {
                up = (try? await client.version()) == 2
                if !up { try await Task.sleep(nanoseconds: 50_000_000) }
            }
            guard up else { throw CoordinatorError(reason: .connection, message: "the agent on port \(endpoint.port) did not start") }
        }
    }

    func stop() {
        for server in servers where server.isRunning {
            server.terminate()
            server.waitUntilExit()
        }
    }

    /// Bytes that crossed the data connections of a move, from the source's export job log.
    func wireBytes(of move: MoveRecord) async throws -> Int64 { try await exportLog(move, .wire) }

    /// Disk bytes the (final) export sent as changed, from the source's export job log.
    func changedBytes(of move: MoveRecord) async throws -> Int64 { try await exportLog(move, .changed) }

    /// `figure` of the move's (final) export job, summed over its disks.
    private func exportLog(_ move: MoveRecord, _ figure: ExportJobLog.Figure) async throws -> Int64 {
        guard let job = move.facts.exportJob, let first = endpoints.first else { return 0 }
        return ExportJobLog.total(figure, in: try await RAPIClient(endpoint: first).job(job))
    }
}
