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

    /// A lone agent, started, holding one stopped instance `vm1` with a 1 MiB disk: the target of
    /// the API's hostile-input tests.
    public static func startedWithOneInstance(_ label: String, cluster: String) throws -> AgentHarness {
        let agent = try alone(label, cluster: cluster)
        try agent.start()
        let image = agent.folder.file("vm1.img")
        try TestData.writeMixed(image, size: 1 << 20)
        try agent.addInstance("vm1", disks: [image])
        return agent
    }

    /// `gnt-move move` from `self` to `destination` at their bind addresses, with both clusters'
    /// CAs and credentials and the coordinator's state in `stateDir`.
    public func moveArguments(to destination: AgentHarness, _ instances: [String], stateDir: String) -> [String] {
        MoveEnd(self).moveArguments(to: MoveEnd(destination), instances, stateDir: stateDir)
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
    /// What the agent wrote to stderr so far (its log).
    public var serverLog: String { server?.stderr ?? "" }

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

/// One end of a move as `gnt-move move` and `run` name it.
public struct MoveEnd: Sendable {
    public let host: String
    public let port: Int
    public let caFile: String
    public let passwordFile: String

    public init(host: String, port: Int, caFile: String, passwordFile: String) {
        (self.host, self.port, self.caFile, self.passwordFile) = (host, port, caFile, passwordFile)
    }

    public init(_ agent: AgentHarness) {
        self.init(host: agent.bind, port: agent.port, caFile: agent.dir + "/rapi.crt", passwordFile: agent.dir + "/password")
    }

    /// A cluster object of a `run` request.
    public var json: JSONValue {
        .object(["host": .string(host), "port": .int(port), "ca_file": .string(caFile),
                 "username": .string("gnt-move"), "password_file": .string(passwordFile)])
    }

    /// `gnt-move move` from this end to `destination`.
    public func moveArguments(to destination: MoveEnd, _ instances: [String], stateDir: String) -> [String] {
        ["move", host, destination.host] + instances + [
            "--src-rapi-port", String(port), "--dest-rapi-port", String(destination.port),
            "--src-ca-file", caFile, "--dest-ca-file", destination.caFile,
            "--src-username", "gnt-move", "--src-password-file", passwordFile,
            "--dest-username", "gnt-move", "--dest-password-file", destination.passwordFile,
            "--state-dir", stateDir,
        ]
    }
}
