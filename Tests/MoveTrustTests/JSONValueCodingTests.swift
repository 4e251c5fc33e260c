import MoveTrust
import XCTest

/// Codable over JSONValue trees: numbers keep their spelling, relayed trees pass untouched, and
/// a value of the wrong type is refused naming its field.
final class JSONValueCodingTests: XCTestCase {
    struct Record: Codable, Equatable {
        var count: Int
        var ratio: Double?
        var small: Int8?
        var names: [String]
        var relayed: JSONValue
        var byIndex: [Int: String?]
        var nested: Nested?

        struct Nested: Codable, Equatable { var values: [Int] }
    }

    func testNumbersKeepTheirSpellingThroughARoundTrip() throws {
        let text = #"{"count": 40123, "ratio": 40123.0, "names": ["a"], "relayed": {"port": 40123, "size": 40123.0, "x": [1e3, null, "7"]}, "byIndex": {"0": "br0", "2": null}}"#
        let decoded = try JSONValueDecoder().decode(Record.self, from: try JSONValue(parsing: text))
        XCTAssertEqual(decoded.count, 40123)
        XCTAssertEqual(decoded.ratio, 40123.0)
        XCTAssertEqual(decoded.byIndex, [0: "br0", 2: String?.none])
        XCTAssertEqual(decoded.relayed, try JSONValue(parsing: #"{"port": 40123, "size": 40123.0, "x": [1e3, null, "7"]}"#))
        let encoded = try JSONValueEncoder().encode(decoded)
        // The relayed tree is written exactly as it was read: 40123 and 40123.0 stay apart.
        XCTAssertEqual(encoded["relayed"]?.serialized, decoded.relayed.serialized)
        XCTAssertTrue(encoded["relayed"]?.serialized.contains("40123.0") == true)
        XCTAssertEqual(encoded["count"]?.integerValue, 40123)
        XCTAssertNil(encoded["small"], "nil is left out")
        XCTAssertEqual(try JSONValueDecoder().decode(Record.self, from: encoded), decoded)
    }

    func testAWrongValueIsRefusedNamingItsField() throws {
        let base = #"{"count": 1, "names": [], "relayed": null, "byIndex": {}"#
        let cases: [(String, String)] = [
            (base + #", "nested": {"values": [1, "x"]}}"#, #"'nested.values[1]' is "x"; expected an integer"#),
            (base + #", "small": 300}"#, "'small' is 300; expected an integer from -128 to 127"),
            (base + #", "ratio": "soon"}"#, #"'ratio' is "soon"; expected a number"#),
            (#"{"count": 1.5, "names": [], "relayed": null, "byIndex": {}}"#, "'count' is 1.5; expected an integer"),
            (#"{"count": 9223372036854775808, "names": [], "relayed": null, "byIndex": {}}"#, "'count' is 9223372036854775808; expected an integer"),
            (#"{"names": [], "relayed": null, "byIndex": {}}"#, "'count' is missing"),
            (#"[1]"#, "is [1]; expected an object"),
        ]
        for (text, expected) in cases {
            XCTAssertThrowsError(try JSONValueDecoder().decode(Record.self, from: try JSONValue(parsing: text)), text) { error in
                XCTAssertEqual("\(error)", expected, text)
            }
        }
        // A dictionary keyed by integers refuses a key that is not one (the standard library's
        // own error, still named by its field).
        XCTAssertThrowsError(try JSONValueDecoder().decode(Record.self, from: try JSONValue(parsing: base + #", "byIndex": {"x": "br0"}}"#))) { error in
            XCTAssertTrue("\(error)".hasPrefix("'byIndex"), "\(error)")
        }
    }

    func testNonFiniteNumbersAreRefusedWhenEncoding() {
        struct Value: Encodable { let x: Double }
        XCTAssertThrowsError(try JSONValueEncoder().encode(Value(x: .infinity))) { error in
            XCTAssertEqual("\(error)", "'x' is inf, which JSON cannot hold")
        }
    }
}
