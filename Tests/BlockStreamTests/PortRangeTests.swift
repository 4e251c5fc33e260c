import BlockStream
import Foundation
import TestSupport
import XCTest

/// `--port-range LOW-HIGH`: parsing, and an importer's listener taking the first free port.
final class PortRangeTests: XCTestCase {
    func testParsing() throws {
        XCTAssertEqual(try PortRange(parsing: "60000-60100"), try PortRange(low: 60000, high: 60100))
        XCTAssertEqual(try PortRange(parsing: "61000").description, "61000-61000")
        XCTAssertEqual(try PortRange(parsing: "1-65535").count, 65535)
        let refusals = ["60100-60000": "above its last", "0-10": "port 0 is not a TCP port", "60000-70000": "port 70000 is not a TCP port",
                        "sixty": "not a port range", "60000-": "not a port range", "-5": "not a port range", "1-2-3": "not a port range", "": "not a port range"]
        for (text, reason) in refusals {
            XCTAssertThrowsError(try PortRange(parsing: text), text) { error in
                XCTAssertTrue("\(error)".contains(reason), "\(text): \(error)")
            }
        }
    }

    /// A socket on 127.0.0.1:`port` that holds it; nil when it is taken.
    static func hold(_ port: Int) -> TCPListener? { try? TCPListener(bind: "127.0.0.1", port: port, family: .ipv4) }

    func testListenerTakesTheFirstFreePortAndNamesTheRangeWhenNoneIs() throws {
        // Two consecutive free ports, the first held by another listener.
        var picked: (held: TCPListener, range: PortRange)?
        for _ in 0..<50 {
            let low = Int.random(in: 40_000...59_000)
            if let held = Self.hold(low), Self.hold(low + 1) != nil {
                picked = (held, try PortRange(low: low, high: low + 1))
                break
            }
        }
        let (held, range) = try XCTUnwrap(picked, "no two free consecutive ports")
        let listener = try TCPListener.firstFree(in: range, bind: "127.0.0.1", family: .ipv4)
        XCTAssertEqual(listener.port, range.high, "the held port was skipped")
        do throws(BlockStreamError) {
            _ = try TCPListener.firstFree(in: range, bind: "127.0.0.1", family: .ipv4)
            XCTFail("a range with every port taken was accepted")
        } catch {
            XCTAssertEqual(error.kind, .listen)
            XCTAssertTrue(error.message.hasPrefix("no free port in the data port range \(range) on 127.0.0.1: all 2 port(s) are taken or refused"), error.message)
            XCTAssertTrue(error.message.contains("port \(range.high): Address already in use"), error.message)
        }
        withExtendedLifetime((held, listener)) {}
    }
}
