import ArgumentParser
import Foundation
import MoveCoordinator

struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Read one JSON move request on stdin; write JSON-lines events on stdout.",
        discussion: """
        The request carries the fields of 'move', named after its long options in snake_case (see \
        schemas/run-request.schema.json; events: schemas/run-event.schema.json); its state_dir is \
        used when --state-dir is not given. With "preflight": true, each move's plan and checks are \
        emitted (preflight-plan, preflight) instead of moving, as 'move --preflight'. \(ExitCodes.pointer)
        """)

    @OptionGroup var state: StateDirectoryOption

    func run() async throws {
        let printer = EventPrinter(json: true)
        let request: RunRequest
        do {
            let data = FileHandle.standardInput.readDataToEndOfFile()
            guard !data.isEmpty else { throw CoordinatorError.badRequest("no request on stdin (expected one JSON object)") }
            let json: JSONValue
            do {
                json = try JSONValue(parsing: Array(data))
            } catch {
                throw CoordinatorError.badRequest("the request on stdin is not JSON (\(error))")
            }
            request = try RunRequest(json: json)
        } catch {
            let message = (error as? CoordinatorError)?.message ?? "\(error)"
            FileHandle.standardOutput.write(Data((JSONValue.object(["event": .string("request-invalid"), "reason": .string("bad-request"),
                                                                    "message": .string(message)]).serialized + "\n").utf8))
            Console.error("gnt-move: bad request: \(message)")
            throw ExitCode(2)
        }
        var options = state
        if options.stateDir == nil { options.stateDir = request.stateDir }
        let store: MoveStore
        do { store = try options.store() } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(1)
        }
        let coordinator = Coordinator(store: store, emit: printer.print)
        if request.preflight {
            // The plan and the checks of each move, instead of the moves.
            return try await PreflightOutput(json: true).run(coordinator, request.moves, parallel: request.parallel)
        }
        let results = await coordinator.runAll(request.moves, parallel: request.parallel)
        MoveCommand.reportUnstarted(results)
        if results.contains(where: { $0.state != .done }) { throw ExitCode(1) }
    }
}

struct BatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "batch",
        abstract: "Run the moves listed in FILE (the 'run' request format), for cron.",
        discussion: """
        A lock keeps overlapping runs apart. Moves already done are skipped, interrupted ones are \
        resumed, failed ones are retried with backoff. One summary line per move at the end; a move \
        not done makes the command fail, so cron mails. The request's state_dir is used when \
        --state-dir is not given. \(ExitCodes.pointer)
        """)

    @Argument(help: "The batch file: one 'run' request (JSON).") var file: String
    @Flag(help: "Print only failures: no events, and summary lines only for moves not done.") var quiet = false
    @Option(help: "Tries per move when a failure may pass (a refusal is not tried again).") var attempts = RetryPolicy.standard.attempts
    @Option(name: .customLong("backoff"), help: "Seconds before the second try; doubled before each further one.") var backoff: Double = 30
    @OptionGroup var state: StateDirectoryOption

    func run() async throws {
        let request: RunRequest
        do {
            request = try RunRequest(json: try InputText.json("@" + file, what: "batch"))
        } catch let error as CoordinatorError {
            Console.error("gnt-move: batch file \(file): \(error.message)")
            throw ExitCode(2)
        } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(2)
        }
        var options = state
        if options.stateDir == nil { options.stateDir = request.stateDir }
        let store: MoveStore
        do { store = try options.store() } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(1)
        }
        if request.preflight {
            // Checks only: nothing is recorded, so no lock is needed.
            let coordinator = Coordinator(store: store, emit: { _ in })
            return try await PreflightOutput(json: false, failuresOnly: quiet).run(coordinator, request.moves, parallel: request.parallel)
        }
        guard let lock = BatchLock(path: store.directory + "/batch.lock") else {
            Console.error("gnt-move: another batch holds \(store.directory)/batch.lock")
            throw ExitCode(2)
        }
        defer { lock.release() }
        let printer = EventPrinter(json: false)
        let coordinator = Coordinator(store: store, retry: RetryPolicy(attempts: attempts, firstDelay: backoff),
                                      emit: { if !quiet { printer.print($0) } })
        let outcomes: [BatchOutcome]
        do { outcomes = try await coordinator.runBatch(request.moves, parallel: request.parallel) } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(1)
        }
        for outcome in outcomes where !quiet || !outcome.succeeded { print(outcome.line) }
        if outcomes.contains(where: { !$0.succeeded }) { throw ExitCode(1) }
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
