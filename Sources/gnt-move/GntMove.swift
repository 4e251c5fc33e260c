import ArgumentParser
import MoveTrust

@main
struct GntMove: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gnt-move",
        abstract: "Move virtual-machine instances between clusters, compatible with Ganeti.",
        discussion: """
        Exit codes: 0 success; 1 a check failed or an operation failed (one line on stderr says \
        why); 64 a usage error.
        """,
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
