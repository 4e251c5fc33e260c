import ArgumentParser
import MoveCoordinator
import OpenSSLSupport

struct SpecCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "spec",
        abstract: "Signed instance specs (a gnt-move extension; HMAC-SHA256).",
        subcommands: [Sign.self, Verify.self])

    struct Sign: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign an instance spec, binding it to both clusters, the move's source key and certificate, and an expiry.")
        @OptionGroup var secret: SecretOption
        @Option(name: .long, help: "Source cluster name.") var cluster: String
        @Option(name: .customLong("destination-cluster"), help: "The destination cluster's name.") var destinationCluster: String
        @Option(name: .customLong("key-name"), help: "The move's source X509 key name.") var keyName: String
        @Option(name: .long, help: ArgumentHelp("The move's source certificate (PEM).", valueName: "FILE")) var cert: String
        @Option(name: .long, help: "Seconds the signature stays valid.") var validity: Int64 = 86400
        @Option(name: .long, help: "Salt (default: 16 random hex characters).") var salt: String?
        @Argument(help: "Instance spec JSON file, or - for stdin.") var spec: String

        func execute() throws {
            let cds = try secret.load()
            let text = try InputText.file(spec, what: "instance spec")
            let parsed: InstanceSpec
            do { parsed = try InstanceSpec(json: try JSONValue(parsing: text)) } catch {
                throw CLIError("\(spec): \(error)")
            }
            let binding = SignedInstanceSpec.Binding(sourceCluster: cluster, destinationCluster: destinationCluster, keyName: keyName,
                                                     certificateSHA256: try CertificateFile.sha256(cert), expires: UnixTime.now() + validity)
            Console.json(SignedInstanceSpec.sign(parsed, binding: binding, secret: cds, salt: salt ?? Salt.generate()))
        }
    }

    struct Verify: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Verify a signed instance spec; prints the spec, or the reason it is refused on stderr.")
        @OptionGroup var secret: SecretOption
        @Option(name: .long, help: "Require this source cluster name.") var cluster: String?
        @Option(name: .customLong("destination-cluster"), help: "Require this destination cluster name.") var destinationCluster: String?
        @Option(name: .customLong("key-name"), help: "Require this source key name.") var keyName: String?
        @Option(name: .long, help: ArgumentHelp("Require this source certificate (PEM).", valueName: "FILE")) var cert: String?
        @Argument(help: "Signed spec file, or - for stdin.") var signed: String

        func execute() throws {
            let cds = try secret.load()
            let text = try InputText.file(signed, what: "signed instance spec")
            do {
                let expected = SignedInstanceSpec.Expectation(sourceCluster: cluster, destinationCluster: destinationCluster, keyName: keyName,
                                                              certificateSHA256: try cert.map(CertificateFile.sha256))
                let verified = try SignedInstanceSpec.verify(try JSONValue(parsing: text), secret: cds, expecting: expected)
                Console.json(verified.spec.json)
            } catch {
                throw CLIError("\(signed): \(error)")
            }
        }
    }
}

/// A PEM certificate file's SHA-256 fingerprint, for the spec's binding.
enum CertificateFile {
    static func sha256(_ path: String) throws -> String {
        let text = try InputText.file(path, what: "certificate")
        do {
            return try X509Certificate(pem: text).sha256Fingerprint
        } catch {
            throw CLIError("\(path): not a PEM certificate: \(error)")
        }
    }
}
