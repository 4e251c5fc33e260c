import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// A real agent: initialised with the CLI, served by a `gnt-move agent serve` process on
/// loopback, reached with the RAPI client over HTTPS.
public final class AgentHarness: @unchecked Sendable {
    public let folder: TemporaryDirectory
    public let dir: String
    public let port: Int
    public let cluster: String
    /// The address its RAPI serves on, which clients and moves connect to.
    public let bind: String
    var server: BackgroundProcess?

    /// `dataAddress` is where its import daemons listen (and what its signed disk info names).
    public init(cluster: String, secret: String, user: String = "gnt-move", folder: TemporaryDirectory,
                initArguments: [String] = ["--hypervisor-driver", "fake"], dataAddress: String = "127.0.0.1",
                bind: String = "127.0.0.1") throws {
        self.folder = folder
        self.cluster = cluster
        self.bind = bind
        dir = folder.file(cluster)
        port = freePort()
        let init_ = try gntMove(arguments: ["agent", "init", "--dir", dir, "--cluster-name", cluster, "--port", String(port),
                                            "--bind", bind, "--data-address", dataAddress, "--node-name", "node-\(cluster)",
                                            "--secret", secret] + initArguments)
        XCTAssertEqual(init_.status, 0, init_.stderr)
    }

    /// A lone agent (not started) with a fresh cluster domain secret, in a new temporary folder.
    public static func alone(_ label: String, cluster: String) throws -> AgentHarness {
        let folder = TemporaryDirectory(label)
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        return try AgentHarness(cluster: cluster, secret: secret, folder: folder)
    }

    /// `gnt-move move` from `self` to `destination` at their bind addresses, with both clusters'
    /// CAs and credentials and the coordinator's state in `stateDir`.
    public func moveArguments(to destination: AgentHarness, _ instances: [String], stateDir: String) -> [String] {
        ["move", bind, destination.bind] + instances + [
            "--src-rapi-port", String(port), "--dest-rapi-port", String(destination.port),
            "--src-ca-file", dir + "/rapi.crt", "--dest-ca-file", destination.dir + "/rapi.crt",
            "--src-username", "gnt-move", "--src-password-file", dir + "/password",
            "--dest-username", "gnt-move", "--dest-password-file", destination.dir + "/password",
            "--state-dir", stateDir,
        ]
    }

    public func start() throws {
        server = try BackgroundProcess(Repository.gntMove, ["agent", "serve", "--dir", dir])
        let ready = waitFor(timeout: 30) { [self] in (server?.stderr ?? "").contains("listening on") }
        XCTAssertTrue(ready, "agent \(cluster) did not start: \(server?.stderr ?? "")")
    }

    public func stop() {
        server?.kill(SIGKILL)
        server?.wait()
        server = nil
    }

    deinit { stop() }

    /// The pid of the running `gnt-move agent serve` process.
    public var serverPID: Int32? { server?.pid }

    public var password: String { ((try? String(contentsOfFile: dir + "/password", encoding: .utf8)) ?? "").trimmingCharacters(in: .whitespacesAndNewlines) }

    public func client(user: String? = "gnt-move", password: String? = nil) throws -> RAPIClient {
        try RAPIClient(endpoint: ClusterEndpoint(host: bind, port: port, caFile: dir + "/rapi.pem",
                                                 username: user, password: password ?? self.password))
    }

    public func addInstance(_ name: String, disks: [String], extra: [String] = []) throws {
        let result = try gntMove(arguments: ["agent", "add-instance", "--dir", dir, name] + disks.flatMap { ["--disk", $0] } + extra)
        XCTAssertEqual(result.status, 0, result.stderr)
    }

    /// Waits for the `remote-import` log entry of an import job (nil if the job failed first).
    public func awaitRemoteImport(_ job: Int64, timeout: Double = 30) async throws -> JSONValue? {
        let client = try client()
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            let status = try await client.job(job)
            let entries = status["oplog"]?.arrayValue?.first?.arrayValue ?? []
            if let entry = entries.first(where: { $0.arrayValue?[2].stringValue == "remote-import" }) { return entry.arrayValue?[3] }
            if status["status"]?.stringValue == "error" { return nil }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        return nil
    }

    /// Every per-move key on this cluster, source and import keys alike.
    public var keyNames: [String] {
        [dir + "/crypto", dir + "/crypto/import"].flatMap {
            ((try? FileManager.default.contentsOfDirectory(atPath: $0)) ?? []).filter { $0.hasPrefix("x509-") }
        }
    }
}

/// Two started agents that share a fresh cluster domain secret: the usual source and destination.
public final class AgentPair: @unchecked Sendable {
    public let folder: TemporaryDirectory
    public let source: AgentHarness
    public let destination: AgentHarness

    public init(_ label: String) throws {
        folder = TemporaryDirectory(label)
        let secret = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", secret).status, 0)
        source = try AgentHarness(cluster: "cluster-a", secret: secret, folder: folder)
        destination = try AgentHarness(cluster: "cluster-b", secret: secret, folder: folder)
        try source.start()
        try destination.start()
    }

    public func stop() {
        source.stop()
        destination.stop()
    }
}
