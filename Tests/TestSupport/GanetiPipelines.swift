import Foundation

/// Ganeti's import/export transport, built exactly as `lib/impexpd` builds it (docs/protocol.md §5.2), for
/// use as the interop peer. Paths and magic are filled in; nothing else differs.
public enum GanetiPipelines {
    public static let cipher = "HIGH:-DES:-3DES:-EXPORT:-DH"

    /// The importer's socat listener, writing to stdout.
    public static func importSocat(key: String, cert: String, ca: String) -> String {
        "/usr/bin/socat -ls -d -d -b1048576 -u OPENSSL-LISTEN:0,reuseaddr,forever,intervall=0.01,keepalive,keepidle=60,keepintvl=10,keepcnt=5,verify=1,cipher=\(cipher),key=\(key),cert=\(cert),cafile=\(ca),pf=ipv4 stdout"
    }

    /// The exporter's socat connector, reading stdin.
    public static func exportSocat(host: String, port: Int, key: String, cert: String, ca: String, commonName: String = "localhost") -> String {
        "/usr/bin/socat -ls -d -d -b1048576 -u stdin OPENSSL:\(host):\(port),connect-timeout=20,retry=10,intervall=1,keepalive,keepidle=60,keepintvl=10,keepcnt=5,verify=1,cipher=\(cipher),key=\(key),cert=\(cert),cafile=\(ca),pf=ipv4,openssl-commonname=\(commonName)"
    }

    static func decompressFilter(_ compress: String) -> String? {
        switch compress {
        case "none": return nil
        case "zstd": return "zstd -d"
        default: return "gzip -d -c"
        }
    }

    static func compressFilter(_ compress: String) -> String? {
        switch compress {
        case "none": return nil
        case "gzip-slow": return "gzip -c"
        case "zstd": return "zstd"
        default: return "gzip -1 -c"
        }
    }

    /// The whole import pipeline: socat | decompress | magic check | dd, writing `destination`
    /// (Ganeti's raw-disk import suffix, with `conv=notrunc`). socat's log goes to `socatLog`.
    public static func importCommand(key: String, cert: String, ca: String, compress: String, magic: String?,
                                     destination: String, socatLog: String) -> String {
        var parts = [importSocat(key: key, cert: cert, ca: ca) + " 2>\(socatLog)"]
        if let filter = decompressFilter(compress) { parts.append(filter) }
        let dd = "{ LC_ALL=C dd bs=1048576 <&0 2>/dev/null & pid=${!}; wait $pid; }"
        if let magic {
            let prefix = "M=" + magic
            parts.append("{ { read -n \(prefix.utf8.count) magic && if test \"$magic\" != \(prefix); then echo 'Magic value mismatch' >&2; exit 1;fi; } && \(dd) }")
        } else {
            parts.append(dd)
        }
        parts.append("dd of=\(destination) bs=1048576 conv=notrunc,fsync 2>/dev/null")
        return parts.joined(separator: " | ")
    }

    /// The whole export pipeline: { echo M=magic; dd } < source | compress | socat.
    public static func exportCommand(source: String, host: String, port: Int, key: String, cert: String, ca: String,
                                     compress: String, magic: String?) -> String {
        let dd = "{ LC_ALL=C dd bs=1048576 <&0 2>/dev/null & pid=${!}; wait $pid; }"
        var parts = [magic.map { "{ echo -E -n M=\($0) && \(dd) } < \(source)" } ?? "\(dd) < \(source)"]
        if let filter = compressFilter(compress) { parts.append(filter) }
        parts.append(exportSocat(host: host, port: port, key: key, cert: cert, ca: ca))
        return parts.joined(separator: " | ")
    }

    /// Runs a pipeline as Ganeti does: `bash -o errexit -o pipefail -c`.
    public static func start(_ command: String) throws -> BackgroundProcess {
        try BackgroundProcess("/bin/bash", ["-o", "errexit", "-o", "pipefail", "-c", command])
    }

    /// The port a socat listener logged (`listening on AF=2 0.0.0.0:PORT`).
    public static func listeningPort(socatLog: String) -> Int? {
        guard let text = try? String(contentsOfFile: socatLog, encoding: .utf8),
              let range = text.range(of: #"listening on AF=2 [0-9.]+:(\d+)"#, options: .regularExpression) else { return nil }
        return Int(text[range].split(separator: ":").last ?? "")
    }
}
