import ArgumentParser
import MoveCoordinator
import OpenSSLSupport

struct X509Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "x509",
        abstract: "Per-move keys and signed certificates (X-Ganeti-Signature).",
        subcommands: [Create.self, Sign.self, Verify.self, Remove.self])

    struct Create: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make an RSA-2048 key and a self-signed certificate in DIR/<key-name>/.",
            discussion: "Prints {\"x509_key_name\": [name, hmac, salt], \"x509_ca\": \"<signed certificate>\"}.")

        @OptionGroup var secret: SecretOption

        @Option(name: .long, help: ArgumentHelp("Key store directory.", valueName: "DIR"))
        var dir: String

        @Option(name: .long, help: "Certificate validity in seconds (at most 604800, 7 days).")
        var validity: Int64 = X509KeyStore.defaultValidity

        @Option(name: .long, help: "Certificate common name (default: this host's FQDN).")
        var cn: String?

        func execute() throws {
            let cds = try secret.load()
            let created = try X509KeyStore(directory: dir).create(secret: cds, validity: validity, commonName: cn ?? HostIdentity.fqdn())
            Console.json(.object(["x509_key_name": created.signedName, "x509_ca": .string(created.signedCertificate)]))
        }
    }

    struct Sign: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Sign a PEM certificate; prints the X-Ganeti-Signature form over its canonical PEM.")

        @OptionGroup var secret: SecretOption

        @Option(name: .long, help: "Salt ([a-zA-Z0-9]+; default: 16 random hex characters).")
        var salt: String?

        @Argument(help: ArgumentHelp("PEM certificate file, or - for stdin.", valueName: "CERT"))
        var cert: String

        func execute() throws {
            let cds = try secret.load()
            let text = try InputText.file(cert, what: "certificate")
            let certificate: X509Certificate
            do { certificate = try X509Certificate(pem: text) } catch {
                throw CLIError("\(cert): \(error)")
            }
            do {
                print(try SignedCertificate.sign(certificate, secret: cds, salt: salt ?? Salt.generate()), terminator: "")
            } catch {
                throw CLIError("\(cert): \(error)")
            }
        }
    }

    struct Verify: ReportingCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check a signed certificate: signature, expiry, and not valid only in the future (150 s skew).",
            discussion: "Prints {\"subject\", \"notBefore\", \"notAfter\", \"salt\", \"fingerprint\"}, or the reason it is refused on stderr.")

        @OptionGroup var secret: SecretOption

        @Argument(help: ArgumentHelp("Signed certificate file, or - for stdin.", valueName: "SIGNED"))
        var signed: String

        func execute() throws {
            let cds = try secret.load()
            let text = try InputText.file(signed, what: "signed certificate")
            do {
                let (certificate, salt) = try SignedCertificate.verify(text, secret: cds)
                Console.json(.object([
                    "subject": .string(certificate.subject),
                    "notBefore": .string(UnixTime.iso8601(certificate.notBefore)),
                    "notAfter": .string(UnixTime.iso8601(certificate.notAfter)),
                    "salt": .string(salt),
                    "fingerprint": .string("sha256:" + certificate.sha256Fingerprint),
                ]))
            } catch {
                throw CLIError("\(signed): \(error)")
            }
        }
    }

    struct Remove: ReportingCommand {
        static let configuration = CommandConfiguration(abstract: "Delete a key and its certificate.")

        @Option(name: .long, help: ArgumentHelp("Key store directory.", valueName: "DIR"))
        var dir: String

        @Argument(help: "Key name (x509-…, as 'x509 create' printed it).")
        var name: String

        func execute() throws {
            let store = X509KeyStore(directory: dir)
            guard store.contains(name: name) else { throw CLIError("no key named '\(name)' in \(dir)") }
            try store.remove(name: name)
        }
    }
}
