import ArgumentParser
import BlockStream
import Foundation
import Logging
import MoveCoordinator
import Synchronization

/// Where the coordinator keeps its state: `/var/lib/gnt-move` as root, else the XDG state directory.
struct StateDirectoryOption: ParsableArguments {
    @Option(name: .customLong("state-dir"),
            help: ArgumentHelp("Coordinator state directory, holding moves.sqlite (default: /var/lib/gnt-move as root, else $XDG_STATE_HOME/gnt-move or ~/.local/state/gnt-move).",
                               valueName: "DIR"))
    var stateDir: String?

    var path: String {
        if let stateDir { return stateDir }
        if getuid() == 0 { return "/var/lib/gnt-move" }
        let environment = ProcessInfo.processInfo.environment
        let base = environment["XDG_STATE_HOME"] ?? ((environment["HOME"] ?? NSTemporaryDirectory()) + "/.local/state")
        return base + "/gnt-move"
    }

    /// The store, created if needed (for commands that record moves).
    func store() throws -> MoveStore {
        do {
            return try MoveStore(directory: path)
        } catch let error as NSError where error.domain == NSCocoaErrorDomain {
            // Foundation's description of a failed mkdir is its userInfo dump; say it as mkdir would.
            let underlying = (error.userInfo[NSUnderlyingErrorKey] as? any Error).map { $0 as NSError }
            let reason = underlying.map { $0.domain == NSPOSIXErrorDomain ? String(cString: strerror(Int32($0.code))) : $0.localizedDescription }
            throw CLIError("cannot create the state directory \(path): \(reason ?? error.localizedDescription)")
        }
    }

    /// The store of earlier moves: a state directory without one is an error, not a new
    /// empty database (`status`, `resume`, `abort`, `cleanup`).
    func existingStore() throws -> MoveStore {
        guard FileManager.default.fileExists(atPath: path + "/moves.sqlite") else {
            throw CLIError("no moves recorded in \(path) (no such state directory or no moves.sqlite in it; see --state-dir)")
        }
        return try MoveStore(directory: path)
    }
}

/// `--verbose` (each state, info) and `--debug` (each RAPI call), through swift-log on stderr.
struct LoggingOptions: ParsableArguments {
    @Flag(name: [.short, .long], help: "Log each state of each move on stderr.") var verbose = false
    @Flag(name: [.short, .long], help: "Also log each RAPI call (implies --verbose).") var debug = false

    func bootstrap() {
        let level: Logger.Level = debug ? .debug : (verbose ? .info : .warning)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

/// Prints move events: JSON lines with `--json`; otherwise one readable line each, and on a
/// terminal a live progress line per disk that the next event replaces.
final class EventPrinter: Sendable {
    let json: Bool
    let terminal: Bool = isatty(1) == 1
    private let progressShown = Mutex<Bool>(false)

    init(json: Bool) { self.json = json }

    func print(_ event: MoveEvent) {
        if json {
            emit(event.json.serialized)
            return
        }
        if terminal && event.event == .progress {
            let line = "\(event.instance): \(event.fields["message"]?.stringValue ?? "")"
            FileHandle.standardOutput.write(Data(("\r\u{1B}[K" + line).utf8))
            progressShown.withLock { $0 = true }
            return
        }
        if progressShown.withLock({ let shown = $0; $0 = false; return shown }) {
            FileHandle.standardOutput.write(Data("\r\u{1B}[K".utf8))
        }
        let detail: String
        switch event.event {
        case .moveStarted: detail = "started moving to \(event.fields["destination_instance"]?.stringValue ?? event.instance)"
        case .step: detail = event.fields["step"]?.stringValue ?? ""
        case .progress, .diskDone: detail = event.fields["message"]?.stringValue ?? ""
        case .moveDone:
            let downtime = event.fields["downtime_seconds"]?.numberValue.map { String(format: ", downtime %.1f s", $0) } ?? ""
            detail = "done as \(event.fields["destination_instance"]?.stringValue ?? event.instance) in \(Int(event.fields["seconds"]?.numberValue ?? 0)) s\(downtime)"
        case .moveFailed: detail = "FAILED (\(event.fields["reason"]?.stringValue ?? "")): \(event.fields["message"]?.stringValue ?? "")"
        }
        emit("\(event.instance) [\(event.moveId)]: \(detail)")
    }

    /// Unbuffered, so that an orchestrator reading the pipe sees each event at once.
    private func emit(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }
}

struct MoveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "move",
        abstract: "Move instances from one cluster to another (the options of Ganeti's move-instance).",
        discussion: ExitCodes.pointer)

    @Argument(help: "Source cluster: a cluster profile's name (see --clusters), or its RAPI host name or address.") var sourceCluster: String
    @Argument(help: "Destination cluster: a cluster profile's name, or its RAPI host name or address.") var destinationCluster: String
    @Argument(help: "Instances to move; each is its own move, --parallel of them at a time.") var instances: [String]

    @Option(name: .customLong("clusters"),
            help: ArgumentHelp("Cluster profiles: named clusters with their RAPI host, port, CA file, user and password file (default: \(ClusterProfiles.defaultPath) when it exists). Options given here override a profile's values.", valueName: "FILE"))
    var clustersFile: String?
    @Option(name: .customLong("src-rapi-port"), help: "The source cluster's RAPI port (default: its profile's, else 5080).") var srcRapiPort: Int?
    @Option(name: .customLong("src-ca-file"), help: ArgumentHelp("The source cluster's RAPI certificate (PEM); the only one trusted. Needed unless the source is a cluster profile.", valueName: "FILE"))
    var srcCaFile: String?
    @Option(name: .customLong("src-username"), help: "RAPI user on the source cluster (it needs write access).") var srcUsername: String?
    @Option(name: .customLong("src-password-file"), help: ArgumentHelp("The source user's password (one line).", valueName: "FILE"))
    var srcPasswordFile: String?
    @Option(name: .customLong("dest-rapi-port"), help: "The destination cluster's RAPI port (default: its profile's, else 5080).") var destRapiPort: Int?
    @Option(name: .customLong("dest-ca-file"), help: ArgumentHelp("The destination cluster's RAPI certificate (PEM; default: its profile's, else the source's).", valueName: "FILE"))
    var destCaFile: String?
    @Option(name: .customLong("dest-username"), help: "RAPI user on the destination cluster (default: the source's).") var destUsername: String?
    @Option(name: .customLong("dest-password-file"), help: ArgumentHelp("The destination user's password (default: the source's).", valueName: "FILE"))
    var destPasswordFile: String?
    @Option(name: .customLong("dest-instance-name"), help: "The instance's name on the destination (single instance).") var destInstanceName: String?
    @Option(name: .customLong("dest-primary-node"), help: "The destination node (single instance; excludes -I).") var destPrimaryNode: String?
    @Option(name: .customLong("dest-secondary-node"), help: "The destination's secondary node, for DRBD (single instance).") var destSecondaryNode: String?
    @Option(name: .customLong("dest-disk-template"), help: "Disk template on the destination (default: the source's).") var destDiskTemplate: String?
    @Option(help: "Stream compression; both clusters must offer it.") var compress = CompressionMethod.none
    @Option(name: [.customShort("I"), .customLong("iallocator")], help: "Let this allocator choose the destination node(s) (as move-instance's -I).")
    var iallocator: String?
    @Flag(name: .customLong("keep-source-instance"), help: "Keep the (stopped) source instance after the move.") var keepSourceInstance = false
    @Option(name: [.short, .customLong("parallel")], help: "Moves to run at once.") var parallel = 1
    @Option(help: "Bytes per second per disk stream, K/M/G suffixes (gnt-move agents; default: no limit).") var bwlimit: ByteSize?
    @Option(name: [.customShort("H"), .customLong("hypervisor-parameters")], help: "Hypervisor parameter overrides: key=value,… (single instance).")
    var hypervisorParameters: String?
    @Option(name: [.customShort("B"), .customLong("backend-parameters")], help: "Backend parameter overrides: key=value,… (single instance).")
    var backendParameters: String?
    @Option(name: [.customShort("O"), .customLong("os-parameters")], help: "OS parameter overrides: key=value,… (single instance).")
    var osParameters: String?
    @Option(name: .customLong("net"), help: "NIC override idx:key=value,… with keys name, mac, ip, mode, link, vlan, network (mac=generate: a new address; an empty value clears a field; single instance; repeatable).")
    var net: [String] = []
    @Option(name: .customLong("storage-map"),
            help: ArgumentHelp("Where disks land: a disk in volume group OLD goes to volume group NEW (sent as Ganeti's disk parameter vg); template:OLD=NEW maps the disk template (e.g. template:plain=file; must agree with --dest-disk-template). Repeatable.",
                               valueName: "OLD=NEW"))
    var storageMap: [String] = []
    @Option(name: .customLong("bridge-map"),
            help: ArgumentHelp("Every NIC whose link (bridge) is OLD gets link NEW on the destination; other NICs keep theirs. Repeatable.", valueName: "OLD=NEW"))
    var bridgeMap: [String] = []
    @Flag(inversion: .prefixedNo, help: "Start the instance on the destination (default: if it ran on the source).") var start: Bool?
    @Flag(help: "JSON-lines events on stdout.") var json = false
    @Flag(help: "Show the plan (each disk's size and destination, compression, stream, node, name, what happens to the source), then check both clusters, credentials, the shared secret (a handshake round trip), OS, hypervisor, names and space; move nothing.")
    var preflight = false
    @Option(help: "Give up a move (and clean up) after this many seconds (default: no limit).") var timeout: Double?
    @Flag(help: "Warm move: copy the disks while the source runs, then stop it and send only the chunks that changed (both clusters must be gnt-move agents with gnt-move-warm-v1).")
    var warm = false
    @Option(name: .customLong("warm-passes"), help: "With --warm: pre-copy passes at most (1-10); after the second, only while the difference shrinks.")
    var warmPasses = 1
    @Option(name: .customLong("opportunistic-tries"), help: "Creation attempts with opportunistic locking before a normal one (needs -I).")
    var opportunisticTries = 0
    @Option(name: .customLong("opportunistic-delay"), help: "Seconds between opportunistic tries (±15%).") var opportunisticDelay: Double = 30
    @OptionGroup var state: StateDirectoryOption
    @OptionGroup var logging: LoggingOptions

    func validate() throws {
        if let timeout, timeout <= 0 { throw ValidationError("--timeout must be positive") }
        if opportunisticTries < 0 { throw ValidationError("--opportunistic-tries must not be negative") }
        if opportunisticTries > 0 && iallocator == nil { throw ValidationError("--opportunistic-tries needs -I/--iallocator") }
        if opportunisticDelay <= 0 { throw ValidationError("--opportunistic-delay must be positive") }
        if instances.count > 1 && (destInstanceName != nil || destPrimaryNode != nil || destSecondaryNode != nil) {
            throw ValidationError("--dest-instance-name and --dest-*-node apply to a single instance")
        }
        if iallocator != nil && destPrimaryNode != nil { throw ValidationError("-I and --dest-primary-node exclude each other") }
        if instances.count > 1 && (hypervisorParameters != nil || backendParameters != nil || osParameters != nil || !net.isEmpty) {
            throw ValidationError("-H, -B, -O and --net apply to a single instance")
        }
        if parallel < 1 { throw ValidationError("--parallel must be at least 1") }
        if !MoveRequest.warmPassLimit.contains(warmPasses) { throw ValidationError("--warm-passes must be from 1 to 10") }
        if warmPasses != 1 && !warm { throw ValidationError("--warm-passes needs --warm") }
        for override in net {
            do { _ = try Self.nicOverride(override) } catch { throw ValidationError("\(error)") }
        }
        do {
            let storage = try ResourceMaps.parse(storageMap, .storage)
            _ = try ResourceMaps.parse(bridgeMap, .bridge)
            try ResourceMaps.checkAgreement(storage, diskTemplate: destDiskTemplate)
        } catch { throw ValidationError("\(error)") }
        for (option, text) in [("-H", hypervisorParameters), ("-B", backendParameters), ("-O", osParameters)] {
            do { _ = try Self.parameters(text) } catch { throw ValidationError("\(option): \(error)") }
        }
    }

    func run() async throws {
        logging.bootstrap()
        let printer = EventPrinter(json: json)
        let profiles: ClusterProfiles
        do { profiles = try ClusterProfiles.load(path: clustersFile) } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(1)
        }
        // The CA and password files are read by the coordinator, per move: a file that cannot
        // be read fails the move with an event, as any other failure.
        let (source, destination) = try endpoints(profiles)
        do {
            let coordinator = Coordinator(store: try state.store(), logger: Logger(label: "gnt-move.coordinator"), emit: printer.print)
            var requests: [MoveRequest] = []
            for instance in instances {
                var request = MoveRequest(source: source, destination: destination, instance: instance)
                request.destinationName = destInstanceName
                request.primaryNode = destPrimaryNode
                request.secondaryNode = destSecondaryNode
                request.diskTemplate = destDiskTemplate
                request.iallocator = iallocator
                request.compress = compress
                request.keepSourceInstance = keepSourceInstance
                request.start = start
                request.bandwidthLimit = bwlimit?.bytes
                request.timeout = timeout
                request.opportunisticTries = opportunisticTries
                request.opportunisticDelay = opportunisticDelay
                request.warm = warm
                request.warmPasses = warmPasses
                request.storageMap = try ResourceMaps.parse(storageMap, .storage)
                request.bridgeMap = try ResourceMaps.parse(bridgeMap, .bridge)
                request.hvparams = try Self.parameters(hypervisorParameters)
                request.beparams = try Self.parameters(backendParameters)
                request.osparams = try Self.parameters(osParameters)
                for override in net {
                    let (index, fields) = try Self.nicOverride(override)
                    request.nicOverrides[index] = fields
                }
                requests.append(request)
            }
            if preflight {
                try await PreflightOutput(json: json).run(coordinator, requests, parallel: parallel)
                return
            }
            let results = await coordinator.runAll(requests, parallel: parallel)
            Self.reportUnstarted(results)
            if results.contains(where: { $0.state != .done }) { throw ExitCode(1) }
        } catch let error as ExitCode {
            throw error
        } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(1)
        }
    }
}

extension MoveCommand {
    /// The two clusters: a profile's values where the argument names one, then the options
    /// given; a destination that is no profile takes the source's CA file and credentials.
    func endpoints(_ profiles: ClusterProfiles) throws -> (source: ClusterEndpoint, destination: ClusterEndpoint) {
        var source = profiles.endpoint(named: sourceCluster) ?? ClusterEndpoint(host: sourceCluster, caFile: "")
        if let srcRapiPort { source.port = srcRapiPort }
        if let srcCaFile { source.caFile = srcCaFile }
        if let srcUsername { source.username = srcUsername }
        if let srcPasswordFile { source.passwordFile = srcPasswordFile }
        guard !source.caFile.isEmpty else {
            throw ValidationError("--src-ca-file is needed: '\(sourceCluster)' is not a cluster profile in \(profiles.path)")
        }
        var destination = profiles.endpoint(named: destinationCluster) ?? {
            var inherited = ClusterEndpoint(host: destinationCluster, caFile: source.caFile, username: source.username)
            inherited.passwordFile = source.passwordFile
            return inherited
        }()
        if let destRapiPort { destination.port = destRapiPort }
        if let destCaFile { destination.caFile = destCaFile }
        if let destUsername { destination.username = destUsername }
        if let destPasswordFile { destination.passwordFile = destPasswordFile }
        return (source, destination)
    }

    /// A move that could not even start (a bad name, an unreadable CA or password file) also
    /// gets one line on stderr, beside its `move-failed` event.
    static func reportUnstarted(_ results: [MoveRecord]) {
        for record in results where record.id == "-" {
            Console.error("gnt-move: \(record.instance): \(record.error ?? "cannot start the move")")
        }
    }

    /// `key=value,key=value`, as Ganeti's `-H`/`-B`/`-O`; integers and booleans keep their type.
    static func parameters(_ text: String?) throws -> [String: JSONValue] {
        guard let text, !text.isEmpty else { return [:] }
        var result: [String: JSONValue] = [:]
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[0].isEmpty else { throw CLIError("'\(pair)' is not key=value") }
            if let number = Int(parts[1]) { result[parts[0]] = .int(number) }
            else if parts[1] == "true" || parts[1] == "false" { result[parts[0]] = .bool(parts[1] == "true") }
            else { result[parts[0]] = .string(parts[1]) }
        }
        return result
    }

    /// `--net idx:key=value,…`; an empty value clears the field.
    static func nicOverride(_ text: String) throws -> (Int, [String: String?]) {
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        guard parts.count == 2, let index = Int(parts[0]), index >= 0 else { throw CLIError("--net '\(text)': expected idx:key=value,…") }
        var fields: [String: String?] = [:]
        for pair in parts[1].split(separator: ",") {
            let kv = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
            guard kv.count == 2, InstanceSpec.NIC.fieldNames.contains(kv[0]) else {
                throw CLIError("--net '\(text)': '\(pair)' is not key=value with a key among \(InstanceSpec.NIC.fieldNames.joined(separator: ", "))")
            }
            fields[kv[0]] = kv[1].isEmpty ? String?.none : kv[1]
        }
        return (index, fields)
    }
}

struct StatusCommand: ReportingCommand {
    static let configuration = CommandConfiguration(commandName: "status", abstract: "Show recorded moves.")
    @Argument(help: "A move id: show it with its transitions (default: one line per recorded move).") var id: String?
    @Flag(help: "Print a JSON array of moves instead.") var json = false
    @OptionGroup var state: StateDirectoryOption

    func execute() throws {
        let store = try state.existingStore()
        let moves = try id.map { id in
            guard let move = try store.move(id) else { throw CLIError("no move \(id) in \(state.path)") }
            return [move]
        } ?? store.moves()
        if json {
            Console.json(.array(moves.map(\.json)))
            return
        }
        for move in moves {
            let downtime = move.facts.downtimeSeconds.map { String(format: "  downtime %.1f s", $0) } ?? ""
            print("\(move.id)  \(move.instance)  \(move.state.rawValue)  \(UnixTime.iso8601(Int64(move.updated)))\(downtime)\(move.error.map { "  \($0)" } ?? "")")
            if id != nil {
                for transition in try store.transitions(move.id) {
                    print("    \(UnixTime.iso8601(Int64(transition.at)))  \(transition.state)  \(transition.detail)")
                }
            }
        }
    }
}

struct ResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "resume", abstract: "Continue a move from its recorded state.")
    @Argument(help: "Move id (as 'status' shows it).") var id: String
    @Flag(help: "JSON-lines events on stdout.") var json = false
    @OptionGroup var state: StateDirectoryOption

    func run() async throws {
        do {
            let coordinator = Coordinator(store: try state.existingStore(), emit: EventPrinter(json: json).print)
            let result = try await coordinator.resume(id)
            if result.state != .done { throw ExitCode(1) }
        } catch let error as ExitCode { throw error } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(1)
        }
    }
}

struct AbortCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "abort", abstract: "Stop a move and clean up after it.")
    @Argument(help: "Move id (as 'status' shows it).") var id: String
    @OptionGroup var state: StateDirectoryOption

    func run() async throws {
        do {
            let coordinator = Coordinator(store: try state.existingStore(), emit: EventPrinter(json: false).print)
            _ = try await coordinator.abort(id)
        } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(1)
        }
    }
}

struct CleanupCommand: ReportingCommand {
    static let configuration = CommandConfiguration(commandName: "cleanup", abstract: "Forget finished moves.")
    @Option(name: .customLong("older-than"), help: "Forget done or cleaned moves last updated more than this many days ago.")
    var olderThan: Double = 30
    @OptionGroup var state: StateDirectoryOption

    func execute() throws {
        let removed = try state.existingStore().purge(before: Date().timeIntervalSince1970 - olderThan * 86400)
        print("forgot \(removed) finished move(s)")
    }
}
