import MoveTrust
import XCTest

/// docs/protocol.md §8.1: Ganeti's own HMAC vectors (test/py/legacy/ganeti.utils.hash_unittest.py).
final class HMACVectorTests: XCTestCase {
    func hmac(_ key: String, _ text: String, salt: String? = nil) -> String {
        GanetiHMAC.sha1(key: ClusterDomainSecret(key: key), text: text, salt: salt)
    }

    func testGanetiVectors() {
        XCTAssertEqual(hmac("", ""), "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d")
        XCTAssertEqual(hmac("3YzMxZWE", "Hello World"), "ef4f3bda82212ecb2f7ce868888a19092481f1fd")
        XCTAssertEqual(hmac("TguMTA2K", ""), "f904c2476527c6d3e6609ab683c66fa0652cb1dc")
        XCTAssertEqual(hmac("3YzMxZWE", String(repeating: "The quick brown fox jumps over the lazy dog\n", count: 1500)),
                       "35901b9a3001a7cdcf8e0e9d7c2e79df2223af54")
        XCTAssertEqual(hmac("TguMTA2K", "", salt: "abc0"), "4999bf342470eadb11dfcd24ca5680cf9fd7cdce")
        XCTAssertEqual(hmac("TguMTA2K", "", salt: "abc9"), "17a4adc34d69c0d367d4ffbef96fd41d4df7a6e8")
        XCTAssertEqual(hmac("3YzMxZWE", "Hello World", salt: "xyz0"), "7f264f8114c9066afc9bb7636e1786d996d3cc0d")
    }

    func testEmptySaltIsNoSalt() {
        XCTAssertEqual(hmac("TguMTA2K", "", salt: ""), hmac("TguMTA2K", ""))
    }

    func testVerifyIsCaseInsensitive() {
        let key = ClusterDomainSecret(key: "3YzMxZWE")
        let digest = "7f264f8114c9066afc9bb7636e1786d996d3cc0d"
        for form in [digest, digest.uppercased(), digest.capitalized] {
            XCTAssertTrue(GanetiHMAC.verifySHA1(key: key, text: "Hello World", digest: form, salt: "xyz0"), form)
        }
        XCTAssertFalse(GanetiHMAC.verifySHA1(key: key, text: "Hello World", digest: digest, salt: "xyz1"))
        XCTAssertFalse(GanetiHMAC.verifySHA1(key: key, text: "Hello World", digest: String(digest.dropLast()), salt: "xyz0"))
        XCTAssertFalse(GanetiHMAC.verifySHA1(key: key, text: "Hello World", digest: "", salt: "xyz0"))
    }

    func testSHA256ForOwnFormats() {
        // RFC 4231 test case 2: key "Jefe", "what do ya want for nothing?".
        XCTAssertEqual(GanetiHMAC.sha256(key: ClusterDomainSecret(key: "Jefe"), text: "what do ya want for nothing?"),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
        XCTAssertEqual(GanetiHMAC.sha256(key: ClusterDomainSecret(key: "Jefe"), text: " want for nothing?", salt: "what do ya"),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    func testSaltsAreSixteenLowercaseHex() {
        let salt = Salt.generate()
        XCTAssertEqual(salt.count, 16)
        XCTAssertTrue(salt.allSatisfy { "0123456789abcdef".contains($0) })
        XCTAssertNotEqual(salt, Salt.generate())
    }
}
