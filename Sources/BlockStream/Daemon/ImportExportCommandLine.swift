/// The daemon's command line, written in one place: `gnt-move import-export` declares its
/// options with ``ImportExportOptions/Option`` and everyone who starts a daemon (the agent, OS
/// script pipelines, the benchmark) renders one with ``ImportExportOptions/commandLine``.
/// Renaming an option renames it on both sides; removing one breaks the build.
extension ImportExportOptions {
    /// The `gnt-move` subcommand that runs one daemon.
    public static let subcommand = "import-export"

    /// The daemon's long options, as Ganeti's import-export daemon spells them. The address
    /// family flags are ``AddressFamily``'s raw values (`--ipv4`, `--ipv6`).
    public enum Option: String, Sendable, CaseIterable {
        case key, cert, ca, bind, host, port
        case portRange = "port-range"
        case connectTimeout = "connect-timeout"
        case connectRetries = "connect-retries"
        case handshakeTimeout = "handshake-timeout"
        case compress, magic
        case expectedSize = "expected-size"
        case source, dest
        case streamProtocol = "protocol"
        case resume, bwlimit
        case targetIsZero = "target-is-zero"
        case journal, reconnect, warm, compare, precopy
        case abortAfter = "abort-after"
        case chunkDigest = "chunk-digest"

        /// `--name`, as it appears on a command line.
        public var flag: String { "--" + rawValue }
    }

    /// `--expected-size` counts MiB.
    public static let expectedSizeUnit: Int64 = 1 << 20

    /// The arguments after ``subcommand`` that make `gnt-move import-export` run with these
    /// options: STATUSFILE MODE, then every option that is set. The status file must be set (the
    /// daemon requires one). `--expected-size` is rounded up to whole MiB. `echoLog` and the
    /// stream's tuning (chunk size, compression workers, confirmation timeout) are not options
    /// of the daemon and keep its defaults.
    public var commandLine: [String] {
        var arguments = (statusFile.map { [$0] } ?? []) + [mode.rawValue]
        func add(_ option: Option, _ value: String?) {
            if let value { arguments += [option.flag, value] }
        }
        func add(_ option: Option, if set: Bool) {
            if set { arguments.append(option.flag) }
        }
        add(.key, keyPath)
        add(.cert, certificatePath)
        add(.ca, caPath)
        arguments.append("--" + family.rawValue)
        add(.bind, bind)
        add(.host, host)
        add(.port, port.map { String($0) })
        add(.portRange, portRange?.description)
        add(.connectTimeout, String(connectTimeout))
        add(.connectRetries, String(connectRetries))
        add(.handshakeTimeout, String(handshakeTimeout))
        add(.compress, stream.compression.rawValue)
        add(.magic, stream.magic)
        add(.chunkDigest, stream.chunkDigest?.rawValue)
        add(.expectedSize, expectedSize.map { String($0 / Self.expectedSizeUnit + ($0 % Self.expectedSizeUnit == 0 ? 0 : 1)) })
        add(mode == .import ? .dest : .source, path)
        add(.streamProtocol, streamProtocol.rawValue)
        add(.resume, if: resume)
        add(.bwlimit, bandwidthLimit.map { String($0) })
        add(.targetIsZero, if: targetIsZero)
        add(.journal, journalPath)
        add(.reconnect, reconnectWindow > 0 ? String(reconnectWindow) : nil)
        add(.warm, if: warm)
        add(.compare, if: compare)
        add(.precopy, if: precopy)
        add(.abortAfter, abortAfter.map { String($0) })
        return arguments
    }
}
