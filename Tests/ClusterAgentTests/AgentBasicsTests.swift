import ClusterAgent
import Foundation
import MoveTrust
import TestSupport
import XCTest

final class UsersFileTests: XCTestCase {
    func testGanetiFormats() {
        let file = UsersFile(text: """
        # comment
        plain secret
        clear {cleartext}pw write
        ha1 {HA1}\(Hex.encodeMD5("ha1:Ganeti Remote API:hidden")) read,write
        reader {CLEARTEXT}r read
        broken
        """)
        XCTAssertNotNil(file.authenticate(user: "plain", password: "secret"))
        XCTAssertNil(file.authenticate(user: "plain", password: "Secret"))
        XCTAssertEqual(file.authenticate(user: "clear", password: "pw")?.canWrite, true)
        XCTAssertEqual(file.authenticate(user: "ha1", password: "hidden")?.canWrite, true)
        XCTAssertNil(file.authenticate(user: "ha1", password: "wrong"))
        XCTAssertEqual(file.authenticate(user: "reader", password: "r")?.canWrite, false)
        XCTAssertNil(file.authenticate(user: "broken", password: ""))
        XCTAssertNil(file.authenticate(user: "nobody", password: "x"))
    }
}

import OpenSSLSupport
extension Hex {
    static func encodeMD5(_ text: String) -> String { encode(MessageAuthentication.digest(.md5, Array(text.utf8))) }
}
