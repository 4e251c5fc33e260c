import ArgumentParser
import MoveCoordinator

struct DiskInfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diskinfo",
        abstract: "Signed destination disk info [host, port, magic, hmac, salt].",
        subcommands: [Sign.self, Check.self])

    struct Sign: ReportingCommand {
        static let configuration = CommandConfiguration(abstract: "Print signed disk info.")
        @OptionGroup var secret: SecretOption
        @Option(name: .long, help: "Disk index (0 for the first disk).") var index: Int
        @Option(name: .long, help: "Destination host (IP address or name).") var host: String
        @Option(name: .long, help: "Destination TCP port: where the importer listens.") var port: Int
        @Option(name: .long, help: "The disk's stream magic (see 'gnt-move magic').") var magic: String
        @Option(name: .long, help: "Salt (default: 16 random hex characters).") var salt: String?

        func execute() throws {
            guard (1...65535).contains(port) else { throw CLIError("--port \(port) is not a TCP port (1-65535)") }
            Console.json(RemoteImportDiskInfo.sign(index: index, host: host, port: port, magic: magic,
                                                   secret: try secret.load(), salt: salt ?? Salt.generate()))
        }
    }

    struct Check: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check signed disk info for disk INDEX; prints {host, port, magic}, or the reason it is refused on stderr.")
        @OptionGroup var secret: SecretOption
        @Option(name: .long, help: "Disk index the info must be for.") var index: Int
        @Argument(help: "The disk info JSON, - for stdin, or @FILE.") var json: String

        func execute() throws {
            let cds = try secret.load()
            let info = try RemoteImportDiskInfo.check(try InputText.json(json, what: "disk info"), index: index, secret: cds)
            Console.json(.object(["host": .string(info.host), "port": .int(info.port), "magic": .string(info.magic)]))
        }
    }
}
