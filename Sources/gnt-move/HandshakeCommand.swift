import ArgumentParser
import MoveCoordinator

struct HandshakeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "handshake",
        abstract: "The export handshake [0, hmac, salt].",
        subcommands: [Make.self, Check.self])

    struct Make: ReportingCommand {
        static let configuration = CommandConfiguration(abstract: "Print a fresh handshake.")
        @OptionGroup var secret: SecretOption
        @Option(name: .long, help: "Salt (default: 16 random hex characters).")
        var salt: String?

        func execute() throws {
            Console.json(ExportHandshake.make(secret: try secret.load(), salt: salt ?? Salt.generate()))
        }
    }

    struct Check: ReportingCommand {
        static let configuration = CommandConfiguration(abstract: "Check a handshake; prints nothing if it is valid, else the reason it is refused on stderr.")
        @OptionGroup var secret: SecretOption
        @Argument(help: "The handshake JSON, - for stdin, or @FILE.")
        var json: String

        func execute() throws {
            let cds = try secret.load()
            try ExportHandshake.check(try InputText.json(json, what: "handshake"), secret: cds)
        }
    }
}

struct MagicCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "magic",
        abstract: "Compute the per-disk stream magic: sha1(\"0\" + base + instance + index).")

    @Option(name: .long, help: "Magic base (12 hex characters in Ganeti).")
    var base: String
    @Option(name: .long, help: "Destination instance name.")
    var instance: String
    @Option(name: .long, help: "Disk index (0 for the first disk).")
    var index: Int

    func execute() throws {
        print(ImportExportMagic.compute(base: base, instanceName: instance, index: index))
    }
}
