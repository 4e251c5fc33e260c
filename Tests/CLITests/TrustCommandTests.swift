import Foundation
import MoveTrust
import TestSupport
import XCTest

/// The trust commands as a user or script runs them: real processes, real files.
final class TrustCommandTests: XCTestCase {
    let certs = Repository.path("certs")

    func testSecretNew() throws {
        let folder = TemporaryDirectory("cli")
        let path = folder.file("cds")
        XCTAssertEqual(try gntMove("secret", "new", "--out", path).status, 0)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertNotNil(text.range(of: "^[0-9a-f]{40}\n$", options: .regularExpression))
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int, 0o400)
        let again = try gntMove("secret", "new", "--out", path)
        XCTAssertEqual(again.status, 1)
        XCTAssertEqual(again.stderr, "gnt-move: \(path) already exists; use --force to replace it\n")
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), text, "nothing written")
        XCTAssertEqual(try gntMove("secret", "new", "--out", path, "--force").status, 0)
        XCTAssertNotEqual(try String(contentsOfFile: path, encoding: .utf8), text)
    }

    func testX509CreateVerifyRemove() throws {
        let folder = TemporaryDirectory("cli")
        let secret = certs + "/test-secret"
        let created = try gntMove("x509", "create", "--secret", secret, "--dir", folder.file("crypto"), "--cn", "node1.example.com")
        XCTAssertEqual(created.status, 0, created.stderr)
        let json = try JSONValue(parsing: created.stdout)
        let name = try XCTUnwrap(json["x509_key_name"]?.arrayValue?.first?.stringValue)
        XCTAssertNotNil(name.range(of: #"^x509-\d{4}-\d{2}-\d{2}_\d{2}_\d{2}_\d{2}-[a-z0-9]{8}$"#, options: .regularExpression), name)
        let signed = folder.write("signed", try XCTUnwrap(json["x509_ca"]?.stringValue))
        for file in ["key", "cert"] {
            let mode = try FileManager.default.attributesOfItem(atPath: folder.file("crypto/\(name)/\(file)"))[.posixPermissions] as? Int
            XCTAssertEqual(mode, 0o400)
        }

        let verified = try gntMove("x509", "verify", "--secret", secret, signed)
        XCTAssertEqual(verified.status, 0, verified.stderr)
        let info = try JSONValue(parsing: verified.stdout)
        XCTAssertEqual(info["subject"]?.stringValue, "CN=node1.example.com")
        XCTAssertNotNil(info["notBefore"]?.stringValue)
        XCTAssertNotNil(info["notAfter"]?.stringValue)
        XCTAssertNotNil(info["salt"]?.stringValue)

        let wrong = try gntMove("x509", "verify", "--secret", certs + "/other-secret", signed)
        XCTAssertEqual(wrong.status, 1)
        XCTAssertEqual(wrong.stderr, "gnt-move: \(signed): X509 certificate signature is invalid\n")

        XCTAssertEqual(try gntMove("x509", "remove", "--dir", folder.file("crypto"), name).status, 0)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("crypto/\(name)")))
        let gone = try gntMove("x509", "remove", "--dir", folder.file("crypto"), name)
        XCTAssertEqual(gone.status, 1)
        XCTAssertTrue(gone.stderr.contains("no key named"), gone.stderr)
    }

    func testX509CreateRefusesLongValidityAndWritesNothing() throws {
        let folder = TemporaryDirectory("cli")
        let result = try gntMove("x509", "create", "--secret", certs + "/test-secret", "--dir", folder.file("crypto"), "--validity", "604801")
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.contains("exceeds the maximum of 604800 s"), result.stderr)
        XCTAssertEqual(result.stdout, "")
        XCTAssertEqual(X509KeyStore(directory: folder.file("crypto")).names(), [])
    }

    func testX509SignMatchesVector() throws {
        let folder = TemporaryDirectory("cli")
        let secret = folder.write("cds", "cd-secret\n")
        let result = try gntMove("x509", "sign", "--secret", secret, "--salt", "0123456789abcdef", certs + "/vectors/cert1.pem")
        XCTAssertEqual(result.status, 0, result.stderr)
        let cert1 = try String(contentsOfFile: certs + "/vectors/cert1.pem", encoding: .utf8)
        XCTAssertEqual(result.stdout, "X-Ganeti-Signature: 0123456789abcdef/915a36ba983f0d910a732ef9c5c9574093b0bca3\n\n" + cert1)
        let badSalt = try gntMove("x509", "sign", "--secret", secret, "--salt", "bad-salt", certs + "/vectors/cert1.pem")
        XCTAssertEqual(badSalt.status, 1)
        XCTAssertTrue(badSalt.stderr.contains("invalid salt 'bad-salt'"), badSalt.stderr)
    }

    func testCommittedCertificatesVerifyAsDocumented() throws {
        let secret = certs + "/test-secret"
        XCTAssertEqual(try gntMove("x509", "verify", "--secret", secret, certs + "/test-a.signed").status, 0)
        XCTAssertEqual(try gntMove("x509", "verify", "--secret", secret, certs + "/test-b.signed").status, 0)
        let expected: [(String, String)] = [
            ("expired.signed", "Certificate is expired"),
            ("future.signed", "Certificate not yet valid"),
            ("wrong-secret.signed", "X509 certificate signature is invalid"),
        ]
        for (file, reason) in expected {
            let result = try gntMove("x509", "verify", "--secret", secret, certs + "/" + file)
            XCTAssertEqual(result.status, 1, file)
            XCTAssertTrue(result.stderr.hasPrefix("gnt-move: \(certs)/\(file): \(reason)"), result.stderr)
            XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, "one line")
        }
    }

    func testBadInputsGetOneLineAndExitOne() throws {
        let folder = TemporaryDirectory("cli")
        let empty = folder.write("empty", "")
        let multi = folder.write("multi", "abc\ndef\n")
        let truncated = folder.write("truncated", String(try String(contentsOfFile: certs + "/test-a.signed", encoding: .utf8).prefix(300)))
        let garbage = folder.write("garbage", "X-Ganeti-Signature: abc/def\n\nthis is not a certificate\n")
        let badSalt = folder.write("badsalt", "X-Ganeti-Signature: a-b/def\n\n" + (try String(contentsOfFile: certs + "/test-a.pem", encoding: .utf8)))
        let cases: [([String], String)] = [
            (["x509", "verify", "--secret", folder.file("nope"), certs + "/test-a.signed"], "cluster domain secret \(folder.file("nope")) does not exist"),
            (["x509", "verify", "--secret", empty, certs + "/test-a.signed"], "cluster domain secret \(empty) is empty"),
            (["x509", "verify", "--secret", multi, certs + "/test-a.signed"], "cluster domain secret \(multi) has 2 non-empty lines; expected exactly one"),
            (["x509", "verify", "--secret", certs + "/test-secret", truncated], "\(truncated): X509 certificate cannot be parsed"),
            (["x509", "verify", "--secret", certs + "/test-secret", garbage], "\(garbage): X509 certificate cannot be parsed"),
            (["x509", "verify", "--secret", certs + "/test-secret", badSalt], "\(badSalt): X509 certificate signature is missing"),
            (["x509", "verify", "--secret", certs + "/test-secret", folder.file("absent")], "\(folder.file("absent")): signed certificate file does not exist"),
            (["handshake", "check", "--secret", certs + "/test-secret", #"[0, "abc"]"#], "Invalid data"),
            (["handshake", "check", "--secret", certs + "/test-secret", #"[0, "abc""#], "argument: handshake is not valid JSON"),
            (["diskinfo", "check", "--secret", certs + "/test-secret", "--index", "0", #"{"host": "x"}"#], "Target info for disk 0: Invalid data"),
            (["x509", "create", "--secret", empty, "--dir", folder.file("crypto")], "cluster domain secret \(empty) is empty"),
        ]
        for (arguments, message) in cases {
            let result = try gntMove(arguments: arguments)
            XCTAssertEqual(result.status, 1, arguments.joined(separator: " "))
            XCTAssertTrue(result.stderr.hasPrefix("gnt-move: " + message), "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.filter { $0 == "\n" }.count, 1, "one line: \(result.stderr)")
            XCTAssertEqual(result.stdout, "")
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.file("crypto")), "nothing written on refusal")
    }

    func testHandshakeDiskInfoMagicCommands() throws {
        let folder = TemporaryDirectory("cli")
        let secret = folder.write("cds", "cd-secret\n")
        let made = try gntMove("handshake", "make", "--secret", secret)
        XCTAssertEqual(made.status, 0)
        XCTAssertEqual(try gntMove("handshake", "check", "--secret", secret, made.stdout).status, 0)
        XCTAssertEqual(try gntMove("handshake", "check", "--secret", secret, "-", stdin: made.stdout).status, 0)
        let foreign = try gntMove("handshake", "check", "--secret", certs + "/test-secret", made.stdout)
        XCTAssertEqual(foreign.stderr, "gnt-move: Hash didn't match, clusters don't share the same domain secret\n")

        let magic = try gntMove("magic", "--base", "a1b2c3d4e5f6", "--instance", "inst1.example.com", "--index", "1")
        XCTAssertEqual(magic.stdout, "25390468911458de5144611d1f96d5d0d50ddce5\n")
        let signed = try gntMove("diskinfo", "sign", "--secret", secret, "--index", "1", "--host", "198.51.100.10", "--port", "40123",
                                 "--magic", "25390468911458de5144611d1f96d5d0d50ddce5", "--salt", "0123456789abcdef")
        XCTAssertEqual(signed.stdout, #"["198.51.100.10",40123,"25390468911458de5144611d1f96d5d0d50ddce5","6fb18bfbdfbe08c77c72ece5143091ee61d310db","0123456789abcdef"]"# + "\n")
        let checked = try gntMove("diskinfo", "check", "--secret", secret, "--index", "1", signed.stdout)
        XCTAssertEqual(checked.status, 0)
        XCTAssertEqual(try JSONValue(parsing: checked.stdout)["port"]?.integerValue, 40123)
        let wrongIndex = try gntMove("diskinfo", "check", "--secret", secret, "--index", "0", signed.stdout)
        XCTAssertEqual(wrongIndex.stderr, "gnt-move: Target info for disk 0: HMAC is wrong\n")
    }

    func testSpecSignAndVerifyCommands() throws {
        let folder = TemporaryDirectory("cli")
        let secret = certs + "/test-secret"
        let spec = folder.write("spec.json", #"{"name":"web1","disk_template":"plain","hypervisor":"kvm","os":null,"disks":[{"size":1024,"mode":"rw","name":null}],"nics":[],"beparams":{"memory":512},"hvparams":{},"osparams":{},"tags":["a"]}"#)
        let cert = certs + "/test-a.pem"
        let signed = try gntMove("spec", "sign", "--secret", secret, "--cluster", "cluster-a", "--destination-cluster", "cluster-b",
                                 "--key-name", "x509-k", "--cert", cert, spec)
        XCTAssertEqual(signed.status, 0, signed.stderr)
        let signedFile = folder.write("signed.json", signed.stdout)
        let verified = try gntMove("spec", "verify", "--secret", secret, "--cluster", "cluster-a", "--destination-cluster", "cluster-b",
                                   "--key-name", "x509-k", "--cert", cert, signedFile)
        XCTAssertEqual(verified.status, 0, verified.stderr)
        XCTAssertEqual(try JSONValue(parsing: verified.stdout)["name"]?.stringValue, "web1")
        let tampered = folder.write("tampered.json", signed.stdout.replacingOccurrences(of: #""memory":512"#, with: #""memory":4096"#))
        let refused = try gntMove("spec", "verify", "--secret", secret, tampered)
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stderr.contains("instance spec signature is invalid"), refused.stderr)
        let otherDestination = try gntMove("spec", "verify", "--secret", secret, "--destination-cluster", "cluster-c", signedFile)
        XCTAssertEqual(otherDestination.status, 1)
        XCTAssertTrue(otherDestination.stderr.contains("bound to destination cluster 'cluster-b'"), otherDestination.stderr)
    }
}
