import ArgumentParser
import Foundation
import MoveCoordinator

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Read one JSON move request on stdin; write JSON-lines events on stdout.",
        discussion: """
        The request carries the fields of 'move', named after its long options in snake_case (see \
        schemas/run-request.schema.json; events: schemas/run-event.schema.json). Exit codes: 0 every \
        move succeeded; 1 a move failed; 2 the request was malformed.
        """)

    @OptionGroup var state: StateDirectoryOption

    func run() async throws {
        let printer = EventPrinter(json: true)
        let request: RunRequest
        do {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            request = try RunRequest(json: try JSONValue(parsing: Array(data)))
        } catch {
            let message = (error as? CoordinatorError)?.message ?? "\(error)"
            FileHandle.standardOutput.write(Data((JSONValue.object(["event": .string("request-invalid"), "reason": .string("bad-request"),
                                                                    "message": .string(message)]).serialized + "\n").utf8))
            Console.error("gnt-move: bad request: \(message)")
            throw ExitCode(2)
        }
        var options = state
        if options.stateDir == nil { options.stateDir = request.stateDir }
        let coordinator = Coordinator(store: try options.store(), emit: printer.print)
        let results = await coordinator.runAll(request.moves, parallel: request.parallel)
        if results.contains(where: { $0.state != .done }) { throw ExitCode(1) }
    }
}

struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Run the moves listed in FILE (the 'run' request format), for cron.",
        discussion: """
        A lock keeps overlapping runs apart. Moves already done are skipped, interrupted ones are \
        resumed, failed ones are retried with backoff. One summary line per move at the end. Exit \
        code 0 when every move is done, 1 otherwise (so cron mails), 2 for a bad file or a held lock.
        """)

    @Argument(help: "The batch file (JSON).") var file: String
    @Flag(help: "Print only failures.") var quiet = false
    @Option(help: "Attempts per move, with backoff between them.") var attempts = 3
    @Option(name: .customLong("backoff"), help: "Seconds before the first retry; doubled each time.") var backoff: Double = 30
    @OptionGroup var state: StateDirectoryOption

    func run() async throws {
        let request: RunRequest
        do {
            request = try RunRequest(json: try InputText.json("@" + file, what: "batch file"))
        } catch {
            Console.error("gnt-move: \(file): \((error as? CoordinatorError)?.message ?? "\(error)")")
            throw ExitCode(2)
        }
        var options = state
        if options.stateDir == nil { options.stateDir = request.stateDir }
        let store = try options.store()
        guard let lock = BatchLock(path: store.directory + "/batch.lock") else {
            Console.error("gnt-move: another batch holds \(store.directory)/batch.lock")
            throw ExitCode(2)
        }
        defer { lock.release() }
        let printer = EventPrinter(json: false)
        let coordinator = Coordinator(store: store, emit: { if !quiet { printer.print($0) } })
        let previous = try store.moves()
        var lines: [(ok: Bool, text: String)] = []
        await withTaskGroup(of: (Bool, String).self) { group in
            var index = 0
            func launch() {
                let move = request.moves[index]
                index += 1
                let identity = RunRequest.identity(move)
                let earlier = previous.last { (try? MoveRequestIdentity.of($0)) == identity }
                group.addTask {
                    await Self.settle(move, earlier: earlier, coordinator: coordinator, attempts: attempts, backoff: backoff)
                }
            }
            while index < min(request.parallel, request.moves.count) { launch() }
            for await line in group {
                lines.append(line)
                if index < request.moves.count { launch() }
            }
        }
        for line in lines where !quiet || !line.ok { print(line.text) }
        if lines.contains(where: { !$0.ok }) { throw ExitCode(1) }
    }

    /// Skips a done move, resumes an interrupted one, retries a failed one with backoff.
    static func settle(_ move: MoveRequest, earlier: MoveRecord?, coordinator: Coordinator, attempts: Int, backoff: Double) async -> (Bool, String) {
        let name = move.targetName == move.instance ? move.instance : "\(move.instance) as \(move.targetName)"
        if let earlier, earlier.state == .done { return (true, "\(name): done earlier (\(earlier.id)), skipped") }
        var record: MoveRecord?
        if let earlier, !earlier.state.isFinal, earlier.state != .failed {
            record = try? await coordinator.resume(earlier.id)
        }
        var attempt = 1
        var delay = backoff
        while record?.state != .done && attempt <= max(1, attempts) {
            if record != nil {
                try? await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay *= 2
            }
            record = await coordinator.run(move)
            attempt += 1
        }
        guard let record else { return (false, "\(name): failed") }
        if record.state == .done { return (true, "\(name): done (\(record.id))") }
        return (false, "\(name): FAILED (\(record.reason ?? "error")): \(record.error ?? "")")
    }
}

/// The identity of a stored move, to match batch entries with earlier runs.
enum MoveRequestIdentity {
    static func of(_ record: MoveRecord) throws -> String {
        let request = record.request
        let target = request["dest_instance_name"]?.stringValue ?? record.instance
        return "\(request["source"]?["host"]?.stringValue ?? ""):\(request["source"]?["port"]?.integerValue ?? 0)/\(record.instance)->"
            + "\(request["destination"]?["host"]?.stringValue ?? ""):\(request["destination"]?["port"]?.integerValue ?? 0)/\(target)"
    }
}

/// An exclusive `flock` on a file, held for the process's lifetime or until released.
final class BatchLock {
    private let fd: Int32

    init?(path: String) {
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            if fd >= 0 { close(fd) }
            return nil
        }
    }

    func release() {
        flock(fd, LOCK_UN)
        close(fd)
    }
}
