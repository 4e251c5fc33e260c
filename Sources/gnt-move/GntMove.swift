import ArgumentParser
import MoveTrust

@main
struct GntMove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gnt-move",
        abstract: "Move virtual-machine instances between clusters, compatible with Ganeti.",
        discussion: ExitCodes.table,
        version: "gnt-move \(GntMoveVersion.current)",
        subcommands: [
            SelfCheckCommand.self,
            SecretCommand.self,
            X509Command.self,
            HandshakeCommand.self,
            DiskInfoCommand.self,
            MagicCommand.self,
            SpecCommand.self,
            ImportExportCommand.self,
            BenchCommand.self,
            AgentCommand.self,
            MoveCommand.self,
            RunCommand.self,
            BatchCommand.self,
            StatusCommand.self,
            ResumeCommand.self,
            AbortCommand.self,
            CleanupCommand.self,
            DemoCommand.self,
        ]
    )
}

/// The exit codes of every command, documented here once: `gnt-move --help` shows this table,
/// the README repeats it, and each command's own help points here.
enum ExitCodes {
    static let table = """
    EXIT CODES (every command):
      0   Success: done as asked, the check passed, every move is done.
      1   Failure, with one line on stderr that says why: an operation or a move
          failed (move, run, batch, resume, abort, demo, agent, bench), or a check
          refused its input (selfcheck, x509 verify, handshake check, diskinfo
          check, spec verify, move --preflight); import-export: the stream did
          not arrive whole, written and flushed.
      2   run: the request on stdin is not a valid request (also reported as a
          request-invalid event on stdout); batch: the batch file is missing or
          not a valid request, or another batch holds the state directory's lock.
      64  Usage error: an unknown command or option, a missing argument, or a
          value the command line does not accept (the usage is printed).
    """

    /// The pointer each command's own help gives instead of its own list.
    static let pointer = "Exit codes: see 'gnt-move --help'."
}
