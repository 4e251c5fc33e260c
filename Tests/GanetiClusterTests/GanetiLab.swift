import AgentTestSupport
import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// Real single-node Ganeti clusters (Debian's ganeti 3.0 package), each in its own namespaces,
/// run by `Tests/GanetiLab/ganeti-lab`; the host reaches them on a private bridge.
final class GanetiLab: @unchecked Sendable {
    /// One cluster of the lab: `cluster-NAME.lab` on its master address, one node `node-NAME.lab`.
    struct Cluster: Sendable {
        let name: String
        let index: Int
        var masterAddress: String { "198.51.100.\(20 + index)" }
        var node: String { "node-\(name).lab" }
    }

    static let script = Repository.path("Tests/GanetiLab/ganeti-lab")
    /// The host's address on the lab bridge: where the clusters reach a gnt-move agent's daemons.
    static let hostAddress = "198.51.100.1"
    let root: String
    let secret: String
    let clusters: [Cluster]

    /// Starts the clusters side by side from nothing (a lab left by an earlier run is removed
    /// first), sharing one new cluster domain secret.
    init(root: String = "/tmp/gnt-move-ganeti-lab", clusters: [Cluster]) throws {
        self.root = root
        self.clusters = clusters
        secret = root + "/cluster-domain-secret"
        Self.stop(root: root)
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        let made = try gntMove("secret", "new", "--out", secret)
        guard made.status == 0 else { throw LabError("gnt-move secret new: \(made.stderr)") }
        let specs = clusters.map { "\($0.name):\($0.index)" }
        let started = try runProcess(Self.script, ["up", root, secret] + specs)
        guard started.status == 0 else { throw LabError("the Ganeti lab did not start: \(started.stderr)") }
        // `up` again is a no-op on running clusters.
        let again = try runProcess(Self.script, ["up", root, secret] + specs)
        guard again.status == 0 else { throw LabError("a second `up` of the Ganeti lab failed: \(again.stderr)") }
    }

    /// Stops every cluster of the lab, removes its network and its folder.
    static func stop(root: String) {
        _ = try? runProcess(script, ["down", root])
        try? FileManager.default.removeItem(atPath: root)
    }

    func stop() { Self.stop(root: root) }

    /// Runs a command inside the cluster's namespaces.
    func exec(_ cluster: Cluster, _ arguments: [String]) throws -> ProcessResult {
        try runProcess(Self.script, ["exec", root, cluster.name] + arguments)
    }

    /// Runs one of Ganeti's `gnt-*` commands; fails the test when it fails.
    @discardableResult
    func gnt(_ cluster: Cluster, _ arguments: String..., file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let result = try exec(cluster, ["/usr/bin/python3", "/usr/sbin/" + arguments[0]] + arguments.dropFirst())
        XCTAssertEqual(result.status, 0, "\(arguments.joined(separator: " ")): \(result.stdout)\(result.stderr)", file: file, line: line)
        return result.stdout
    }

    /// How the coordinator reaches the cluster's RAPI.
    func end(_ cluster: Cluster) -> MoveEnd {
        MoveEnd(host: cluster.masterAddress, port: 5080, caFile: "\(root)/\(cluster.name)/var-lib-ganeti/rapi.pem",
                passwordFile: "\(root)/\(cluster.name)/password")
    }

    /// The lab's OS definition (its scripts copy the disk), for a gnt-move agent's OS folder.
    var osDefinition: String { "\(root)/\(clusters[0].name)/srv/ganeti/os/lab-copy" }

    /// Creates an instance with the lab's OS and file disks of these sizes, fills every disk with
    /// seeded data (random, then a sparse stretch), and returns the disks' files.
    func addInstance(_ cluster: Cluster, _ name: String, diskMiB: [Int], running: Bool, seed: UInt64) throws -> [String] {
        var arguments = ["gnt-instance", "add", "-t", "file", "-o", "lab-copy", "-B", "memory=64", "--no-ip-check", "-n", cluster.node]
        for (index, size) in diskMiB.enumerated() { arguments += ["--disk", "\(index):size=\(size)M"] }
        if !running { arguments.append("--no-start") }
        let result = try exec(cluster, ["/usr/bin/python3", "/usr/sbin/gnt-instance"] + arguments.dropFirst() + [name])
        guard result.status == 0 else { throw LabError("gnt-instance add \(name): \(result.stdout)\(result.stderr)") }
        let files = try diskFiles(cluster, name)
        guard files.count == diskMiB.count else { throw LabError("\(name): expected \(diskMiB.count) disk files, found \(files)") }
        for (index, (file, size)) in zip(files, diskMiB).enumerated() {
            // Data at the start, a hole, data at the end: the copy must keep both and the hole.
            let bytes = Int64(size) << 20
            try TestData.writeSparse(file, size: bytes, dataRanges: [(0, Int(bytes / 2)), (bytes - (1 << 20), 1 << 20)],
                                     seed: seed &+ UInt64(index))
        }
        return files
    }

    /// The instance's disk files, in disk order (Ganeti names them `<uuid>.file.diskN`).
    func diskFiles(_ cluster: Cluster, _ instance: String) throws -> [String] {
        let folder = "\(root)/\(cluster.name)/srv/ganeti/file-storage/\(instance)"
        let names = (try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []
        func index(_ name: String) -> Int { Int(name.split(separator: "disk").last ?? "") ?? -1 }
        return names.filter { $0.contains(".file.disk") }.sorted { index($0) < index($1) }.map { folder + "/" + $0 }
    }

    /// Every instance as Ganeti lists it: name → "admin_state oper_state uuid tags disk sizes".
    func instances(_ cluster: Cluster) throws -> [String: String] {
        let text = try gnt(cluster, "gnt-instance", "list", "--no-headers", "--separator=|",
                           "-o", "name,admin_state,oper_state,uuid,tags,disk.sizes,nic.macs")
        var result: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let fields = line.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            if let name = fields.first { result[name] = fields.dropFirst().joined(separator: " ") }
        }
        return result
    }

    /// Every file under the cluster's file storage → sha256: all instances' disks, byte for byte.
    func storedFiles(_ cluster: Cluster) throws -> [String: String] {
        let folder = "\(root)/\(cluster.name)/srv/ganeti/file-storage"
        var result: [String: String] = [:]
        for relative in FileManager.default.enumerator(atPath: folder)?.allObjects as? [String] ?? [] {
            var isFolder: ObjCBool = false
            if FileManager.default.fileExists(atPath: folder + "/" + relative, isDirectory: &isFolder), !isFolder.boolValue {
                result[relative] = try TestData.sha256(folder + "/" + relative)
            }
        }
        return result
    }

    /// The per-move X509 keys on the cluster's node (`/run/ganeti/crypto`).
    func keys(_ cluster: Cluster) throws -> Set<String> {
        let result = try exec(cluster, ["ls", "/run/ganeti/crypto"])
        return Set(result.stdout.split(separator: "\n").map(String.init).filter { $0.hasPrefix("x509-") })
    }

    /// The summaries of the cluster's jobs, oldest first.
    func jobSummaries(_ cluster: Cluster) throws -> [String] {
        try gnt(cluster, "gnt-job", "list", "--no-headers", "-o", "summary").split(separator: "\n").map {
            $0.trimmingCharacters(in: .whitespaces)
        }
    }
}

/// What a disk held before a move: its size and the SHA-256 of its bytes.
struct DiskFingerprint: Equatable, CustomStringConvertible {
    let size: Int64
    let sha256: String
    var description: String { "\(size) bytes, sha256 \(sha256)" }

    init(_ path: String) throws {
        size = Int64((try FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.int64Value ?? -1)
        sha256 = try TestData.sha256(path)
    }

    static func of(_ paths: [String]) throws -> [DiskFingerprint] { try paths.map(DiskFingerprint.init) }

    /// Fails unless every copy holds its original's bytes. Ganeti sizes file disks in steps of
    /// 4 MiB, so a copy on Ganeti may be longer: the extra bytes must then be zero.
    static func assertCopies(_ copies: [String], hold originals: [DiskFingerprint], file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(copies.count, originals.count, "disks: \(copies)", file: file, line: line)
        for (copy, original) in zip(copies, originals) {
            let size = Int64((try FileManager.default.attributesOfItem(atPath: copy)[.size] as? NSNumber)?.int64Value ?? -1)
            XCTAssertGreaterThanOrEqual(size, original.size, copy, file: file, line: line)
            XCTAssertLessThan(size, original.size + (4 << 20), copy, file: file, line: line)
            XCTAssertEqual(try TestData.sha256(copy, length: original.size), original.sha256, "\(copy) against \(original)", file: file, line: line)
            XCTAssertTrue(try TestData.isZero(copy, from: original.size), "\(copy): bytes past the original's end", file: file, line: line)
        }
    }
}

struct LabError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
