import Foundation
import OpenSSLSupport

/// The cluster domain secret: the HMAC key every cluster in a domain shares.
///
/// Ganeti's file holds 40 lowercase hex characters and a newline. The key is the exact bytes of
/// the first non-empty line (the hex text, not its decoding), and a file with more than one
/// non-empty line is refused (`ReadOneLineFile(strict=True)`).
public struct ClusterDomainSecret: Sendable, Equatable {
    public let key: [UInt8]

    public init(key: String) { self.key = Array(key.utf8) }

    /// Reads the secret from `path`, with Ganeti's one-line rule.
    public static func load(path: String) throws(TrustError) -> ClusterDomainSecret {
        ClusterDomainSecret(key: try OneLineFile.read(path, what: "cluster domain secret"))
    }

    /// A new secret in Ganeti's form: `os.urandom(20).hex()`.
    public static func generateText() -> String { SecureRandom.hex(byteCount: 20) }

    /// Writes a new secret (or `text`, if given) to `path` with mode 0400: 40 hex characters and
    /// a newline. Refuses to replace an existing file unless `force` is set; a replacement is
    /// written to a temporary file and renamed over the old one.
    @discardableResult
    public static func write(to path: String, text: String? = nil, force: Bool) throws(TrustError) -> ClusterDomainSecret {
        let secret = text ?? generateText()
        let contents = secret + "\n"
        let exists = FileManager.default.fileExists(atPath: path)
        if exists && !force {
            throw TrustError(.secret, "\(path) already exists; use --force to replace it")
        }
        do {
            try SecureFile.write(contents: Array(contents.utf8), to: path, mode: 0o400, replace: force)
        } catch {
            throw TrustError(.secret, "cannot write cluster domain secret \(path): \(error)")
        }
        return ClusterDomainSecret(key: secret)
    }
}

/// Ganeti's `ReadOneLineFile(strict=True)`: the exact text of the only non-empty line. Used for
/// the cluster domain secret and for password files.
public enum OneLineFile {
    public static func read(_ path: String, what: String) throws(TrustError) -> String {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot be read" : "does not exist"
            throw TrustError(.secret, "\(what) \(path) \(reason)")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw TrustError(.secret, "\(what) \(path) is not UTF-8 text")
        }
        let lines = TextLines.split(text).filter { !$0.isEmpty }
        guard let first = lines.first else { throw TrustError(.secret, "\(what) \(path) is empty") }
        guard lines.count == 1 else {
            throw TrustError(.secret, "\(what) \(path) has \(lines.count) non-empty lines; expected exactly one")
        }
        return String(first)
    }
}
