import Foundation
import MoveTrust
import TestSupport
import XCTest

/// A bounded, seeded mutation fuzzer over the request-body parsers: ``JSONValue/init(parsing:)``
/// and ``InstanceSpec/init(json:)``. A crash kills the test process; every refusal must be a
/// thrown error, and whatever is accepted must survive a round trip. A few seconds by default;
/// `GNT_MOVE_FUZZ_SECONDS=600` for a longer run, `GNT_MOVE_FUZZ_SEED` to replay one.
final class ParserFuzzTests: XCTestCase {
    static let spec = InstanceSpec(
        name: "web1.example.com", diskTemplate: "plain",
        disks: [.init(size: 10240, mode: "rw", name: "root"), .init(size: 2048)],
        nics: [.init(name: "eth0", mac: "aa:00:00:12:34:56", ip: nil, mode: "bridged", link: "br0", vlan: nil, network: nil)],
        os: "debootstrap+default", hypervisor: "kvm",
        beparams: ["memory": .int(2048), "vcpus": .int(2), "ratio": .double(0.5)], hvparams: ["kernel_path": .string("")],
        osparams: ["dhcp": .string("yes"), "nested": .object(["a": .array([.null, .bool(true), .string("é\u{1F600}")])])],
        tags: ["web", "prod"])

    /// Valid bodies as the agent receives them: a spec, a create request, an export request.
    static let seeds: [String] = [
        spec.json.serialized,
        #"{"__version__": 1, "mode": "create", "name": "vm9", "disk_template": "file", "disks": [{"size": 1, "mode": "rw", "name": "None"}], "nics": [{"mac": "aa:00:00:00:00:01", "link": "br0"}], "os": null, "hypervisor": "kvm", "start": false, "beparams": {"memory": 128}, "tags": ["a"]}"#,
        #"{"mode": "remote", "destination": [["127.0.0.1", 40123, "00ff", "salt"]], "shutdown": true, "remove_instance": false, "x509_key_name": ["x509-2020-01-01_00_00_00-aaaaaaaa", "0123abcd", "salt"], "destination_x509_ca": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}"#,
        #"{"fields": ["status", "opstatus"], "previous_job_info": null, "previous_log_serial": 3}"#,
        #"[1, -1, 0.5, -0.0, 1e3, "a\"b\\c\/d\b\f\n\r\t\u0041\ud83d\ude00", true, false, null, {}, []]"#,
    ]

    /// Parses, and checks what a successful parse promises.
    func check(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) {
        let value: JSONValue
        do {
            value = try JSONValue(parsing: bytes)
        } catch {
            XCTAssertTrue((0...bytes.count).contains(error.offset), "offset \(error.offset) outside the input", file: file, line: line)
            return
        }
        let text = value.serialized
        XCTAssertEqual(try? JSONValue(parsing: text), value, "round trip of \(Self.excerpt(bytes))", file: file, line: line)
        checkSpec(value, file: file, line: line)
    }

    func checkSpec(_ value: JSONValue, file: StaticString = #filePath, line: UInt = #line) {
        do {
            let spec = try InstanceSpec(json: value)
            XCTAssertEqual(try? InstanceSpec(json: spec.json), spec, "spec round trip", file: file, line: line)
            XCTAssertTrue(spec.disks.allSatisfy { $0.size > 0 }, file: file, line: line)
        } catch {
            XCTAssertFalse(error.description.isEmpty, file: file, line: line)
        }
    }

    static func excerpt(_ bytes: [UInt8]) -> String {
        let text = String(decoding: bytes.prefix(200), as: UTF8.self)
        return bytes.count > 200 ? text + "… (\(bytes.count) bytes)" : text
    }

    func testSeedsAreValid() throws {
        for seed in Self.seeds { XCTAssertNoThrow(try JSONValue(parsing: seed), seed) }
        XCTAssertEqual(try InstanceSpec(json: JSONValue(parsing: Self.seeds[0])), Self.spec)
    }

    /// Random byte- and token-level mutations of valid bodies.
    func testMutatedBodies() {
        var fuzzer = JSONFuzzer(seeds: Self.seeds)
        let deadline = Date().addingTimeInterval(JSONFuzzer.duration(default: 3))
        var count = 0
        repeat {
            for _ in 0..<100 { check(fuzzer.next()) }
            count += 100
        } while Date() < deadline
        print("ParserFuzzTests: \(count) inputs, seed \(fuzzer.seed)")
    }

    /// Structure-level mutations: valid JSON whose fields have the wrong type, size or value.
    func testMutatedSpecs() {
        var fuzzer = JSONFuzzer(seeds: Self.seeds)
        let odd: [JSONValue] = JSONFuzzer.interestingTokens.compactMap { try? JSONValue(parsing: $0) } + [
            .int64(.max), .int64(.min), .int(0), .int(-1), .string(""), .string(String(repeating: "x", count: 100_000)),
            .array([]), .object([:]), .null, .array(Array(repeating: .object(["size": .int64(.max)]), count: 3)),
        ]
        XCTAssertGreaterThan(odd.count, 20)
        func mutate(_ value: JSONValue, depth: Int) -> JSONValue {
            if depth > 0 && fuzzer.int(0..<4) == 0 { return odd[fuzzer.int(0..<odd.count)] }
            switch value {
            case .object(var fields):
                if let key = fields.keys.sorted().randomElement(using: &fuzzer.random) {
                    switch fuzzer.int(0..<4) {
                    case 0: fields.removeValue(forKey: key)
                    default: fields[key] = mutate(fields[key] ?? .null, depth: depth + 1)
                    }
                }
                return .object(fields)
            case .array(var items):
                if !items.isEmpty {
                    let index = fuzzer.int(0..<items.count)
                    items[index] = mutate(items[index], depth: depth + 1)
                }
                if fuzzer.int(0..<8) == 0 { items.append(contentsOf: items) }
                return .array(items)
            default:
                return odd[fuzzer.int(0..<odd.count)]
            }
        }
        let base = Self.spec.json
        let deadline = Date().addingTimeInterval(JSONFuzzer.duration(default: 2))
        repeat {
            for _ in 0..<100 {
                let value = mutate(base, depth: 0)
                checkSpec(value)
                check(value.serializedBytes)
            }
        } while Date() < deadline
    }

    /// The cases a fuzzer finds only by luck, spelled out.
    func testHostileValues() throws {
        // Deep nesting is refused, not a stack overflow.
        for depth in [257, 1_000, 1_000_000] {
            for text in [String(repeating: "[", count: depth) + String(repeating: "]", count: depth),
                         String(repeating: "{\"a\":", count: depth) + "1" + String(repeating: "}", count: depth)] {
                XCTAssertThrowsError(try JSONValue(parsing: text)) { error in
                    XCTAssertTrue("\(error)".contains("nested too deeply"), "\(error)")
                }
            }
        }
        XCTAssertNoThrow(try JSONValue(parsing: String(repeating: "[", count: 255) + String(repeating: "]", count: 255)))
        // Numbers beyond Int64 and Double keep their text and have no integer value.
        for text in ["1e400", "-1e400", "18446744073709551616", "9223372036854775808", "-9223372036854775809",
                     "1" + String(repeating: "0", count: 10_000)] {
            let value = try JSONValue(parsing: text)
            XCTAssertNil(value.integerValue, text)
            XCTAssertEqual(value.serialized, text)
        }
        XCTAssertEqual(try JSONValue(parsing: "9223372036854775807").integerValue, .max)
        XCTAssertEqual(try JSONValue(parsing: "-9223372036854775808").integerValue, .min)
        XCTAssertEqual(try JSONValue(parsing: "-0").integerValue, 0)
        XCTAssertEqual(try JSONValue(parsing: "-0").serialized, "-0")
        // Not JSON numbers.
        for text in ["NaN", "Infinity", "-Infinity", "+1", "01", "1.", ".1", "0x10", "1e", "-", "1e+"] {
            XCTAssertThrowsError(try JSONValue(parsing: text), text)
        }
        // Strings: invalid UTF-8, lone surrogates, raw control characters, broken escapes.
        let badStrings: [[UInt8]] = [
            [0x22, 0xFF, 0x22], [0x22, 0xC0, 0x80, 0x22], [0x22, 0xED, 0xA0, 0x80, 0x22], [0x22, 0xF4, 0x90, 0x80, 0x80, 0x22],
            [0x22, 0xE2, 0x82, 0x22], Array("\"\\ud800\"".utf8), Array("\"\\udc00\"".utf8), Array("\"\\ud800\\u0041\"".utf8),
            Array("\"a\nb\"".utf8), [0x22, 0x00, 0x22], Array("\"\\x41\"".utf8), Array("\"\\u12\"".utf8), Array("\"abc".utf8),
            [0xFF], [0xEF, 0xBB, 0xBF, 0x31],
        ]
        for bytes in badStrings { XCTAssertThrowsError(try JSONValue(parsing: bytes), Self.excerpt(bytes)) }
        XCTAssertEqual(try JSONValue(parsing: "\"\\ud83d\\ude00\\u0000\"").stringValue, "\u{1F600}\u{0}")
        // A long string and a wide array.
        let long = String(repeating: "\\u00e9", count: 200_000)
        XCTAssertEqual(try JSONValue(parsing: "\"" + long + "\"").stringValue?.count, 200_000)
        XCTAssertEqual(try JSONValue(parsing: "[" + Array(repeating: "0", count: 100_000).joined(separator: ",") + "]").arrayValue?.count, 100_000)
        // Specs: sizes that are not positive Int64 are refused by name.
        for size in ["0", "-1", "1e400", "18446744073709551616", "1.5", "\"1\"", "null", "9223372036854775808"] {
            let text = #"{"name": "a", "disk_template": "file", "hypervisor": "kvm", "disks": [{"size": \#(size)}]}"#
            XCTAssertThrowsError(try InstanceSpec(json: JSONValue(parsing: text)), size) { error in
                XCTAssertTrue("\(error)".contains("disks[0].size"), "\(error)")
            }
        }
        // Huge sizes that are valid Int64 are accepted here; the agent checks their sum.
        let huge = #"{"name": "a", "disk_template": "file", "hypervisor": "kvm", "disks": [{"size": 9223372036854775807}, {"size": 9223372036854775807}]}"#
        XCTAssertEqual(try InstanceSpec(json: JSONValue(parsing: huge)).disks.count, 2)
    }
}
