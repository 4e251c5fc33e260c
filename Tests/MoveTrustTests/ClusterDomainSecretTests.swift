import MoveTrust
import TestSupport
import XCTest

final class ClusterDomainSecretTests: XCTestCase {
    func testWriteProducesGanetiFormat() throws {
        let folder = TemporaryDirectory("secret")
        let path = folder.file("cds")
        let secret = try ClusterDomainSecret.write(to: path, force: false)
        let text = try String(contentsOfFile: path, encoding: .utf8)
        XCTAssertNotNil(text.range(of: "^[0-9a-f]{40}\n$", options: .regularExpression), text)
        XCTAssertEqual(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int, 0o400)
        XCTAssertEqual(try ClusterDomainSecret.load(path: path), secret)
        XCTAssertEqual(secret.key, Array(text.dropLast().utf8), "the key is the hex text, not its decoding")
    }

    func testRefusesOverwriteWithoutForce() throws {
        let folder = TemporaryDirectory("secret")
        let path = folder.file("cds")
        let first = try ClusterDomainSecret.write(to: path, force: false)
        XCTAssertThrowsError(try ClusterDomainSecret.write(to: path, force: false)) {
            XCTAssertTrue("\($0)".contains("already exists; use --force"), "\($0)")
        }
        XCTAssertEqual(try ClusterDomainSecret.load(path: path), first)
        let second = try ClusterDomainSecret.write(to: path, force: true)
        XCTAssertNotEqual(first, second)
        XCTAssertEqual(try ClusterDomainSecret.load(path: path), second)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["cds"], "no temporary file left")
    }

    func testReadingRule() throws {
        let folder = TemporaryDirectory("secret")
        XCTAssertEqual(try ClusterDomainSecret.load(path: folder.write("a", "\n\n  spaced key \n\n")).key, Array("  spaced key ".utf8))
        XCTAssertEqual(try ClusterDomainSecret.load(path: folder.write("b", "abc\r\n")).key, Array("abc".utf8))
        XCTAssertEqual(try ClusterDomainSecret.load(path: folder.write("c", "abc")).key, Array("abc".utf8))
        XCTAssertThrowsError(try ClusterDomainSecret.load(path: folder.write("d", ""))) { XCTAssertTrue("\($0)".hasSuffix("is empty")) }
        XCTAssertThrowsError(try ClusterDomainSecret.load(path: folder.write("e", "\n\n"))) { XCTAssertTrue("\($0)".hasSuffix("is empty")) }
        XCTAssertThrowsError(try ClusterDomainSecret.load(path: folder.write("f", "one\ntwo\n"))) {
            XCTAssertTrue("\($0)".contains("has 2 non-empty lines"), "\($0)")
        }
        XCTAssertThrowsError(try ClusterDomainSecret.load(path: folder.file("missing"))) {
            XCTAssertEqual("\($0)", "cluster domain secret \(folder.file("missing")) does not exist")
        }
    }
}
