import ArgumentParser
import MoveCoordinator

struct SpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spec",
        abstract: "Signed instance specs (a gnt-move extension; HMAC-SHA256).",
        subcommands: [Sign.self, Verify.self])

    struct Sign: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign an instance spec, binding it to the source cluster and the move's source key name.")
        @OptionGroup var secret: SecretOption
        @Option(name: .long, help: "Source cluster name.") var cluster: String
        @Option(name: .customLong("key-name"), help: "The move's source X509 key name.") var keyName: String
        @Option(name: .long, help: "Salt (default: 16 random hex characters).") var salt: String?
        @Argument(help: "Instance spec JSON file, or - for stdin.") var spec: String

        func execute() throws {
            let cds = try secret.load()
            let text = try InputText.file(spec, what: "instance spec")
            let parsed: InstanceSpec
            do { parsed = try InstanceSpec(json: try JSONValue(parsing: text)) } catch {
                throw CLIError("\(spec): \(error)")
            }
            Console.json(SignedInstanceSpec.sign(parsed, cluster: cluster, keyName: keyName, secret: cds, salt: salt ?? Salt.generate()))
        }
    }

    struct Verify: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a signed instance spec; prints the spec or exits 1 with the reason.")
        @OptionGroup var secret: SecretOption
        @Option(name: .long, help: "Require this source cluster name.") var cluster: String?
        @Option(name: .customLong("key-name"), help: "Require this source key name.") var keyName: String?
        @Argument(help: "Signed spec file, or - for stdin.") var signed: String

        func execute() throws {
            let cds = try secret.load()
            let text = try InputText.file(signed, what: "signed instance spec")
            do {
                let verified = try SignedInstanceSpec.verify(try JSONValue(parsing: text), secret: cds,
                                                             expectedCluster: cluster, expectedKeyName: keyName)
                Console.json(verified.spec.json)
            } catch {
                throw CLIError("\(signed): \(error)")
            }
        }
    }
}
