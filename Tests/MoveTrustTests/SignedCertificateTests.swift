import MoveTrust
import OpenSSLSupport
import TestSupport
import XCTest

/// docs/protocol.md §2 and §8: Ganeti's signed-certificate format, byte for byte, and its refusals.
final class SignedCertificateTests: XCTestCase {
    let cert1 = try! String(contentsOfFile: Repository.path("certs/vectors/cert1.pem"), encoding: .utf8)
    let cds = ClusterDomainSecret(key: "cd-secret")

    func testCert1SignedWithBothVectorKeysByteForByte() throws {
        let certificate = try X509Certificate(pem: cert1)
        XCTAssertEqual(try certificate.canonicalPEM(), cert1, "cert1.pem is already canonical")
        XCTAssertEqual(try SignedCertificate.sign(certificate, secret: cds, salt: "0123456789abcdef"),
                       "X-Ganeti-Signature: 0123456789abcdef/915a36ba983f0d910a732ef9c5c9574093b0bca3\n\n" + cert1)
        XCTAssertEqual(try SignedCertificate.sign(certificate, secret: ClusterDomainSecret(key: "My private key!"), salt: "HelloWorld"),
                       "X-Ganeti-Signature: HelloWorld/a0ba84cdeb612bfe3a5bec345b191af5e846a8ac\n\n" + cert1)
    }

    func testCert1Validity() throws {
        let certificate = try X509Certificate(pem: cert1)
        XCTAssertEqual(certificate.notBefore, 1519816700)
        XCTAssertEqual(certificate.notAfter, 1519903100)
    }

    func testLoadingIsCaseInsensitive() throws {
        let text = "x-ganeti-signature:   0123456789abcdef/915A36BA983F0D910A732EF9C5C9574093B0BCA3\n" + cert1
        XCTAssertEqual(try SignedCertificate.load(text, secret: cds).salt, "0123456789abcdef")
        XCTAssertThrowsError(try SignedCertificate.load(text, secret: ClusterDomainSecret(key: "other"))) {
            XCTAssertEqual("\($0)", "X509 certificate signature is invalid")
        }
    }

    func testRewrappedPEMStillVerifies() throws {
        let signed = try SignedCertificate.sign(try X509Certificate(pem: cert1), secret: cds, salt: "abc")
        let lines = signed.split(separator: "\n", omittingEmptySubsequences: false)
        let body = lines.filter { !$0.hasPrefix("-----") && !$0.hasPrefix("X-") && !$0.isEmpty }.joined()
        var rewrapped = String(lines[0]) + "\n\n-----BEGIN CERTIFICATE-----\n"
        var rest = Substring(body)
        while !rest.isEmpty { rewrapped += rest.prefix(76) + "\n"; rest = rest.dropFirst(76) }
        rewrapped += "-----END CERTIFICATE-----\n"
        XCTAssertNoThrow(try SignedCertificate.load(rewrapped, secret: cds))
    }

    func testGanetiRejectionList() throws {
        let rejected = [
            cert1,
            "",
            "X-Ganeti-Signature: \n",
            "X-Ganeti-Sign: $1234$abcdef\n",
            "X-Ganeti-Signature: $1234567890$abcdef\n",
            "X-Ganeti-Signature: $1234$abc\n\n" + cert1,
        ]
        for text in rejected {
            XCTAssertThrowsError(try SignedCertificate.load(text, secret: cds), text) {
                XCTAssertEqual("\($0)", "X509 certificate signature is missing")
            }
        }
    }

    func testInvalidSaltsAreRefusedForSigning() throws {
        let certificate = try X509Certificate(pem: cert1)
        for salt in ["", "a-b", "a_b", "a@b", "a$b", "a,b", "a:b", "a;b", "a/b", "a\\b", "a b", "a\tb", "a\nb"] {
            XCTAssertThrowsError(try SignedCertificate.sign(certificate, secret: cds, salt: salt), salt) {
                XCTAssertTrue("\($0)".contains("invalid salt"), "\($0)")
            }
            XCTAssertNil(SignedCertificate.parseHeader("X-Ganeti-Signature: \(salt)/abcdef\n"), salt)
        }
    }

    func testValidRoundTripsWithHeadersJunkAndTrailer() throws {
        let certificate = try X509Certificate(pem: cert1)
        for salt in ["HelloWorld", "salt", "abcdefghijklmnopqrstuvwxyz", "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "0123456789", Salt.generate()] {
            let signed = try SignedCertificate.sign(certificate, secret: cds, salt: salt)
            XCTAssertEqual(try SignedCertificate.load(signed, secret: cds).salt, salt)
            XCTAssertNoThrow(try SignedCertificate.load("X-Another-Header: with a value\n" + signed, secret: cds))
            let junk = (0..<10).map { "junk line \($0): \(Salt.generate())" }.joined(separator: "\n") + "\n"
            XCTAssertNoThrow(try SignedCertificate.load(junk + signed, secret: cds))
            XCTAssertNoThrow(try SignedCertificate.load(signed + "trailing junk\nmore\n", secret: cds))
            XCTAssertThrowsError(try SignedCertificate.load(signed, secret: ClusterDomainSecret(key: "wrong key")))
        }
    }

    func testTruncatedAndGarbagePEM() throws {
        let signed = try SignedCertificate.sign(try X509Certificate(pem: cert1), secret: cds)
        for text in [String(signed.prefix(signed.count / 2)), signed.replacingOccurrences(of: "-----BEGIN CERTIFICATE-----\nMII", with: "-----BEGIN CERTIFICATE-----\n!!!")] {
            XCTAssertThrowsError(try SignedCertificate.load(text, secret: cds)) {
                XCTAssertTrue("\($0)".contains("cannot be parsed"), "\($0)")
            }
        }
    }

    func testOneChangedByteIsRefused() throws {
        let signed = try SignedCertificate.sign(try X509Certificate(pem: cert1), secret: cds)
        var bytes = Array(signed.utf8)
        let position = bytes.count / 2
        bytes[position] = bytes[position] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
        XCTAssertThrowsError(try SignedCertificate.load(String(decoding: bytes, as: UTF8.self), secret: cds))
    }

    /// Ganeti's clock-skew cases: valid from -1, 0, 37, 75 s accepted; 300 and 1500 s refused.
    func testClockSkew() throws {
        let store = X509KeyStore(directory: TemporaryDirectory("skew").path)
        let now = UnixTime.now()
        for offset: Int64 in [-1, 0, 37, 75, 300, 1500] {
            let key = try store.create(secret: cds, validity: 3600, commonName: "localhost", now: now, notBeforeOffset: offset)
            if offset <= 75 {
                XCTAssertNoThrow(try SignedCertificate.verify(key.signedCertificate, secret: cds, now: now), "offset \(offset)")
            } else {
                XCTAssertThrowsError(try SignedCertificate.verify(key.signedCertificate, secret: cds, now: now), "offset \(offset)") {
                    XCTAssertTrue("\($0)".hasPrefix("Certificate not yet valid"), "\($0)")
                }
            }
        }
    }

    func testExpiredCertificateIsRefused() throws {
        let signed = try SignedCertificate.sign(try X509Certificate(pem: cert1), secret: cds)
        XCTAssertThrowsError(try SignedCertificate.verify(signed, secret: cds)) {
            XCTAssertTrue("\($0)".hasPrefix("Certificate is expired"), "\($0)")
        }
        XCTAssertNoThrow(try SignedCertificate.verify(signed, secret: cds, now: 1519816800))
    }

    func testFreshKeyRoundTrip() throws {
        let folder = TemporaryDirectory("keys")
        let store = X509KeyStore(directory: folder.path)
        let key = try store.create(secret: cds, commonName: "node1.example.com")
        let verified = try SignedCertificate.verify(key.signedCertificate, secret: cds)
        XCTAssertTrue(verified.certificate.isSame(as: key.certificate))
        XCTAssertEqual(verified.certificate.commonName, "node1.example.com")
        XCTAssertEqual(verified.certificate.publicKeyBits, 2048)
        XCTAssertEqual(verified.certificate.notAfter - verified.certificate.notBefore, 86400)
        XCTAssertEqual(try X509KeyName.check(key.signedName, secret: cds), key.name)
        // Separate salts for the name and the certificate (Ganeti shares one; docs/protocol.md §9.12).
        XCTAssertNotEqual(key.signedName.arrayValue?[2].stringValue, verified.salt)
        for path in [key.keyPath, key.certificatePath] {
            let mode = try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int
            XCTAssertEqual(mode, 0o400, path)
        }
        let pem = try String(contentsOfFile: key.certificatePath, encoding: .utf8)
        XCTAssertTrue(pem.hasPrefix("-----BEGIN CERTIFICATE-----"))
        XCTAssertThrowsError(try SignedCertificate.verify(key.signedCertificate, secret: ClusterDomainSecret(key: "other")))
        XCTAssertEqual(store.names(), [key.name])
        try store.remove(name: key.name)
        XCTAssertFalse(FileManager.default.fileExists(atPath: folder.path + "/" + key.name))
        XCTAssertNoThrow(try store.remove(name: key.name), "removal is idempotent")
    }

    func testCertificateCarriesCompatibilitySAN() throws {
        let key = try X509KeyStore(directory: TemporaryDirectory("san").path).create(secret: cds, commonName: "localhost")
        let text = try runProcess("/usr/bin/openssl", ["x509", "-noout", "-text", "-in", key.certificatePath]).stdout
        XCTAssertTrue(text.contains("DNS:ganeti.example.com"), text)
        XCTAssertTrue(text.contains("sha256WithRSAEncryption"), text)
        XCTAssertTrue(text.contains("Public-Key: (2048 bit)"), text)
    }

    func testValidityLimit() throws {
        let store = X509KeyStore(directory: TemporaryDirectory("limit").path)
        XCTAssertThrowsError(try store.create(secret: cds, validity: 7 * 86400 + 1)) {
            XCTAssertTrue("\($0)".contains("exceeds the maximum of 604800 s"), "\($0)")
        }
        XCTAssertThrowsError(try store.create(secret: cds, validity: 0))
        XCTAssertTrue(store.names().isEmpty, "nothing written on refusal")
    }
}
