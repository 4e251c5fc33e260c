import Foundation
import MoveTrust

/// Clusters an admin names once, in `/etc/gnt-move/clusters.json`, so that a move names them
/// (`gnt-move move alpha beta web1`, `"source": "alpha"` in a `run` request):
///
///     {"clusters": {"alpha": {"host": "rapi.alpha.example", "port": 5080,
///                             "ca_file": "alpha-rapi.pem", "username": "gnt-move",
///                             "password_file": "alpha.password"}, "beta": {…}}}
///
/// Relative `ca_file` and `password_file` paths are relative to the file's folder. The password
/// itself never appears: it is read from `password_file` by each move, as for a cluster given
/// in full.
public struct ClusterProfiles: Sendable {
    /// Where profiles are read from when no `--clusters` is given.
    public static let defaultPath = "/etc/gnt-move/clusters.json"

    public let path: String
    public let clusters: [String: ClusterEndpoint]

    /// Reads the profiles at `path`; without one, the default file when it exists (else none).
    /// A given file that is missing, or any file that is malformed, is an error that names it
    /// and the field.
    public static func load(path: String?) throws(CoordinatorError) -> ClusterProfiles {
        let file = path ?? defaultPath
        guard FileManager.default.fileExists(atPath: file) else {
            if path == nil { return ClusterProfiles(path: file, clusters: [:]) }
            throw CoordinatorError.badRequest("the cluster profiles file \(file) does not exist")
        }
        guard let data = FileManager.default.contents(atPath: file) else {
            throw CoordinatorError.badRequest("the cluster profiles file \(file) cannot be read")
        }
        let json: JSONValue
        do { json = try JSONValue(parsing: String(decoding: data, as: UTF8.self)) } catch {
            throw CoordinatorError.badRequest("the cluster profiles file \(file) is not JSON: \(error)")
        }
        guard case .object(let top) = json, case .object(let named)? = top["clusters"] else {
            throw CoordinatorError.badRequest("the cluster profiles file \(file) must be {\"clusters\": {NAME: {\"host\", \"ca_file\", …}}}")
        }
        if let unknown = top.keys.first(where: { $0 != "clusters" }) {
            throw CoordinatorError.badRequest("unknown field '\(unknown)' in the cluster profiles file \(file)")
        }
        let folder = URL(fileURLWithPath: file).deletingLastPathComponent().path
        var clusters: [String: ClusterEndpoint] = [:]
        for (name, entry) in named {
            guard isProfileName(name) else {
                throw CoordinatorError.badRequest("cluster profile name '\(name.prefix(64))' in \(file) is not a name (letters, digits, '.', '-', '_')")
            }
            var endpoint: ClusterEndpoint
            do {
                endpoint = try JSONValueDecoder().decode(ClusterEndpoint.self, from: entry)
            } catch {
                throw CoordinatorError.badRequest("cluster profile '\(name)' in \(file): \(error.description)")
            }
            endpoint.caFile = absolute(endpoint.caFile, in: folder)
            endpoint.passwordFile = endpoint.passwordFile.map { absolute($0, in: folder) }
            clusters[name] = endpoint
        }
        return ClusterProfiles(path: file, clusters: clusters)
    }

    public init(path: String, clusters: [String: ClusterEndpoint]) {
        self.path = path
        self.clusters = clusters
    }

    /// The profile called `name`, if any.
    public func endpoint(named name: String) -> ClusterEndpoint? { clusters[name] }

    static func isProfileName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "._-".contains($0)) }
    }

    private static func absolute(_ path: String, in folder: String) -> String {
        path.hasPrefix("/") ? path : folder + "/" + path
    }
}
