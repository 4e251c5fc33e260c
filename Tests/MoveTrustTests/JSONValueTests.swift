import MoveTrust
import XCTest

final class JSONValueTests: XCTestCase {
    func testNumbersKeepTheirKind() throws {
        let value = try JSONValue(parsing: #"[40123, "40123", 40123.0, -1, 1e3, true, null]"#)
        let items = try XCTUnwrap(value.arrayValue)
        XCTAssertEqual(items.map(PythonFormat.percentS), ["40123", "40123", "40123.0", "-1", "1000.0", "True", "None"])
        XCTAssertEqual(items[0].integerValue, 40123)
        XCTAssertNil(items[2].integerValue)
    }

    func testStringsAndEscapes() throws {
        let value = try JSONValue(parsing: #"{"a":"line\nnext \u00e9 \ud83d\ude00 \"q\""}"#)
        XCTAssertEqual(value["a"]?.stringValue, "line\nnext é 😀 \"q\"")
        XCTAssertEqual(try JSONValue(parsing: value.serialized), value)
    }

    func testMalformedInputIsRefusedWithOffset() {
        for text in ["", "[1,", "{\"a\" 1}", "[01]", "\"abc", "[1] x", "{\"a\":tru}", "\"\\ud800\""] {
            XCTAssertThrowsError(try JSONValue(parsing: text), text) {
                XCTAssertTrue("\($0)".hasPrefix("invalid JSON at byte"), "\($0)")
            }
        }
    }
}
