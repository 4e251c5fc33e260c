import ArgumentParser
import MoveCoordinator

struct SecretCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "secret",
        abstract: "Manage the cluster domain secret.",
        subcommands: [New.self])

    struct New: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a new cluster domain secret: 40 hex characters and a newline, mode 0400.")

        @Option(name: .long, help: ArgumentHelp("Where to write the secret (an existing file is refused without --force).", valueName: "FILE"))
        var out: String

        @Flag(name: .long, help: "Replace an existing file.")
        var force = false

        func execute() throws {
            try ClusterDomainSecret.write(to: out, force: force)
        }
    }
}
