import Foundation
import MoveCoordinator
import TestSupport
import XCTest

/// Everything a failed move must leave as it was, on both sides: every instance as RAPI shows
/// it, and every file in the test's folder (the agents' disks, adopted images, configuration),
/// byte for byte and mode for mode. Bookkeeping that a move may legitimately touch (SQLite state,
/// the coordinator's state folder, the daemons' working folders, per-move keys, which are checked
/// apart) is left out.
public struct SystemSnapshot: Equatable, CustomStringConvertible {
    /// "cluster/instance" → the instance's RAPI fields without its modification time and serial.
    public var instances: [String: JSONValue]
    /// Path relative to the folder → "mode sha256".
    public var files: [String: String]

    public static func take(_ agents: [AgentHarness], folder: TemporaryDirectory) async throws -> SystemSnapshot {
        var instances: [String: JSONValue] = [:]
        for agent in agents {
            let list = try await agent.client().request(.GET, "/2/instances", query: ["bulk": "1"])
            for case .object(var fields) in list.arrayValue ?? [] {
                for volatile in ["mtime", "serial_no"] { fields.removeValue(forKey: volatile) }
                instances["\(agent.cluster)/\(fields["name"]?.stringValue ?? "?")"] = .object(fields)
            }
        }
        return SystemSnapshot(instances: instances, files: try files(under: folder.path))
    }

    static func isBookkeeping(_ relative: String) -> Bool {
        let parts = relative.split(separator: "/").map(String.init)
        if parts.contains(where: { ["crypto", "import-export", "state", "state-b"].contains($0) || $0.hasSuffix("-proxy-keys") }) { return true }
        let name = parts.last ?? ""
        return name.hasPrefix("state.sqlite") || name.hasPrefix("moves.sqlite") || name.hasSuffix("-proxy.pem") || name.hasSuffix(".lock")
    }

    static func files(under root: String) throws -> [String: String] {
        var result: [String: String] = [:]
        guard let walker = FileManager.default.enumerator(atPath: root) else { return result }
        while let relative = walker.nextObject() as? String {
            guard !isBookkeeping(relative) else { continue }
            let path = root + "/" + relative
            var info = stat()
            guard lstat(path, &info) == 0 else { continue }
            let mode = String(info.st_mode, radix: 8)
            switch info.st_mode & S_IFMT {
            case S_IFREG: result[relative] = "\(mode) \(try TestData.sha256(path))"
            case S_IFLNK: result[relative] = "\(mode) -> \((try? FileManager.default.destinationOfSymbolicLink(atPath: path)) ?? "?")"
            default: continue
            }
        }
        return result
    }

    /// The snapshot without instance `name` on any cluster and without its disk files (those
    /// whose name starts with `name.`): what a successful move of it may change.
    public func excluding(_ name: String) -> SystemSnapshot {
        SystemSnapshot(instances: instances.filter { !$0.key.hasSuffix("/" + name) },
                       files: files.filter { !($0.key.split(separator: "/").last ?? "").hasPrefix(name + ".") })
    }

    public var description: String { "\(instances.count) instance(s), \(files.count) file(s)" }

    /// Fails with each difference: an instance or file added, removed or changed.
    public func assertSame(as before: SystemSnapshot, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
        for key in Set(before.instances.keys).union(instances.keys).sorted() where before.instances[key] != instances[key] {
            XCTFail("\(label): instance \(key) changed:\n before \(before.instances[key]?.serialized ?? "absent")\n after  \(instances[key]?.serialized ?? "absent")",
                    file: file, line: line)
        }
        for key in Set(before.files.keys).union(files.keys).sorted() where before.files[key] != files[key] {
            XCTFail("\(label): file \(key) changed: \(before.files[key] ?? "absent") → \(files[key] ?? "absent")", file: file, line: line)
        }
    }
}
