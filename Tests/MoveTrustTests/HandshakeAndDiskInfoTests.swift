import MoveTrust
import XCTest

/// docs/protocol.md §3, §4 and the derived vectors of §8.2.
final class HandshakeAndDiskInfoTests: XCTestCase {
    let cds = ClusterDomainSecret(key: "cd-secret")

    func testHandshakeVector() throws {
        let handshake = ExportHandshake.make(secret: cds, salt: "0123456789abcdef")
        XCTAssertEqual(handshake.serialized, #"[0,"4fa34b6ce1adfd0e7a160939a4ff288805371270","0123456789abcdef"]"#)
        XCTAssertNoThrow(try ExportHandshake.check(handshake, secret: cds))
    }

    func testHandshakeWithStringVersionFailsOnProtocolNotOnHash() throws {
        let value = try JSONValue(parsing: #"["0","4fa34b6ce1adfd0e7a160939a4ff288805371270","0123456789abcdef"]"#)
        XCTAssertThrowsError(try ExportHandshake.check(value, secret: cds)) { error in
            XCTAssertTrue("\(error)".contains("remote import/export protocol"), "\(error)")
        }
    }

    func testGanetiRejectedVersion14887() throws {
        let other = ClusterDomainSecret(key: "c28ac99")
        XCTAssertEqual(ExportHandshake.make(secret: other, salt: "a19cf8cc06").arrayValue?[1].stringValue,
                       "5aedff456f66a363669f3c6cbda24c40bf614d11")
        let v14887 = try JSONValue(parsing: #"[14887,"44bfb044e01dbc5256144a87054281b69c72b11e","a19cf8cc06"]"#)
        XCTAssertThrowsError(try ExportHandshake.check(v14887, secret: other)) { error in
            XCTAssertTrue("\(error)".contains("protocol (local=0, remote=14887)"), "\(error)")
        }
    }

    func testHandshakeRefusals() throws {
        let good = ExportHandshake.make(secret: cds)
        XCTAssertThrowsError(try ExportHandshake.check(good, secret: ClusterDomainSecret(key: "other"))) {
            XCTAssertEqual("\($0)", "Hash didn't match, clusters don't share the same domain secret")
        }
        for bad in [#"[0,"abc"]"#, #"{"a":1}"#, "null", #"[0,1,"salt"]"#, #"[0,"a","b","c"]"#] {
            XCTAssertThrowsError(try ExportHandshake.check(try JSONValue(parsing: bad), secret: cds), bad) {
                XCTAssertTrue("\($0)".hasPrefix("Invalid data") || "\($0)".hasPrefix("Hash didn't match"), "\($0)")
            }
        }
        // A float version prints as 0.0 in Python and so breaks the MAC.
        let float = try JSONValue(parsing: #"[0.0,"4fa34b6ce1adfd0e7a160939a4ff288805371270","0123456789abcdef"]"#)
        XCTAssertThrowsError(try ExportHandshake.check(float, secret: cds))
    }

    func testKeyNameVector() throws {
        let signed = X509KeyName.sign("x509-2010-02-22_17_41_52-abcd1234", secret: cds, salt: "0123456789abcdef")
        XCTAssertEqual(signed.arrayValue?[1].stringValue, "1590da613417d5f2c82022443131cbfd11995544")
        XCTAssertEqual(try X509KeyName.check(signed, secret: cds), "x509-2010-02-22_17_41_52-abcd1234")
        let forged = JSONValue.array([.string("x509-2010-02-22_17_41_52-abcd1235"), signed.arrayValue![1], .string("0123456789abcdef")])
        XCTAssertThrowsError(try X509KeyName.check(forged, secret: cds)) { XCTAssertEqual("\($0)", "HMAC for X509 key name is wrong") }
        // A correctly signed name that is not a safe path component is still refused.
        XCTAssertThrowsError(try X509KeyName.check(X509KeyName.sign("../../etc", secret: cds), secret: cds))
    }

    func testGeneratedKeyNameHasGanetiForm() {
        let name = X509KeyName.generate()
        XCTAssertNotNil(name.range(of: #"^x509-\d{4}-\d{2}-\d{2}_\d{2}_\d{2}_\d{2}-[a-z0-9]{8}$"#, options: .regularExpression), name)
    }

    func testMagicVectors() {
        XCTAssertEqual(ImportExportMagic.compute(base: "a1b2c3d4e5f6", instanceName: "inst1.example.com", index: 0),
                       "fb4ac43ab6b73df33e1c375865e788eb633799c5")
        XCTAssertEqual(ImportExportMagic.compute(base: "a1b2c3d4e5f6", instanceName: "inst1.example.com", index: 1),
                       "25390468911458de5144611d1f96d5d0d50ddce5")
        XCTAssertEqual(ImportExportMagic.generateBase().count, 12)
        for valid in ["----------", "HelloWorld", "J9plh4nFo2", "24A02A81-2264-4B51-A882-A2AB9D85B420"] {
            XCTAssertTrue(ImportExportMagic.isValid(valid), valid)
        }
        for invalid in ["abcd", "with space", String(repeating: "a", count: 101), "a,b,c,d"] {
            XCTAssertFalse(ImportExportMagic.isValid(invalid), invalid)
        }
    }

    func testDiskInfoVectors() throws {
        let bbf = ClusterDomainSecret(key: "bbf46ea9a")
        let info = RemoteImportDiskInfo.sign(index: 0, host: "node1", port: 1234, magic: "mag111", secret: bbf, salt: "ee5ad9")
        XCTAssertEqual(info.serialized, #"["node1",1234,"mag111","5ccaef2e2c8541075e0718824f050bd4c06de960","ee5ad9"]"#)
        XCTAssertEqual(try RemoteImportDiskInfo.check(info, index: 0, secret: bbf), RemoteImportDiskInfo(host: "node1", port: 1234, magic: "mag111"))
        for index in 1..<100 {
            XCTAssertThrowsError(try RemoteImportDiskInfo.check(info, index: index, secret: bbf))
        }
        let magic1 = "25390468911458de5144611d1f96d5d0d50ddce5"
        let second = RemoteImportDiskInfo.sign(index: 1, host: "198.51.100.10", port: 40123, magic: magic1, secret: cds, salt: "0123456789abcdef")
        XCTAssertEqual(second.serialized,
                       #"["198.51.100.10",40123,"25390468911458de5144611d1f96d5d0d50ddce5","6fb18bfbdfbe08c77c72ece5143091ee61d310db","0123456789abcdef"]"#)
    }

    func testDiskInfoPortFormatting() throws {
        // "%s" of the string "40123" equals that of the integer; 40123.0 does not.
        let asString = try JSONValue(parsing: #"["198.51.100.10","40123","25390468911458de5144611d1f96d5d0d50ddce5","6fb18bfbdfbe08c77c72ece5143091ee61d310db","0123456789abcdef"]"#)
        XCTAssertEqual(try RemoteImportDiskInfo.check(asString, index: 1, secret: cds).port, 40123)
        let asFloat = try JSONValue(parsing: #"["198.51.100.10",40123.0,"25390468911458de5144611d1f96d5d0d50ddce5","6fb18bfbdfbe08c77c72ece5143091ee61d310db","0123456789abcdef"]"#)
        XCTAssertThrowsError(try RemoteImportDiskInfo.check(asFloat, index: 1, secret: cds)) {
            XCTAssertEqual("\($0)", "Target info for disk 1: HMAC is wrong")
        }
    }

    func testDiskInfoInvalidHostsAndPortsAreRejectedEvenWithValidMAC() throws {
        for host in [",", "...", "Hello World", "`", "!", "#", "\\"] {
            let info = RemoteImportDiskInfo.sign(index: 0, host: host, port: 1234, magic: "mag111", secret: cds, salt: "s")
            XCTAssertThrowsError(try RemoteImportDiskInfo.check(info, index: 0, secret: cds), host)
        }
        let ports: [JSONValue] = [.int(-1), .int(792825908), .string("HelloWorld!"), .string("`#"), .string("\\\""), .string("_?_")]
        for port in ports {
            let text = "0:node1:\(PythonFormat.percentS(port)):mag111"
            let info = JSONValue.array([.string("node1"), port, .string("mag111"), .string(GanetiHMAC.sha1(key: cds, text: text, salt: "s")), .string("s")])
            XCTAssertThrowsError(try RemoteImportDiskInfo.check(info, index: 0, secret: cds), port.serialized) {
                XCTAssertTrue("\($0)".contains("Invalid service name"), "\($0)")
            }
        }
    }

    func testDiskInfoMissingFieldsAndFakeHash() throws {
        for bad in [#"["",1234,"mag111","x","s"]"#, #"["node1",0,"mag111","x","s"]"#, #"["node1",1234,"","x","s"]"#] {
            XCTAssertThrowsError(try RemoteImportDiskInfo.check(try JSONValue(parsing: bad), index: 0, secret: cds)) {
                XCTAssertTrue("\($0)".contains("Missing destination host, port or magic"), "\($0)")
            }
        }
        XCTAssertThrowsError(try RemoteImportDiskInfo.check(try JSONValue(parsing: #"["nodeX",123,"magic","fakehash","xyz"]"#), index: 0, secret: cds)) {
            XCTAssertTrue("\($0)".contains("HMAC is wrong"))
        }
        XCTAssertThrowsError(try RemoteImportDiskInfo.check(try JSONValue(parsing: #"["node1",1234,"mag111"]"#), index: 0, secret: cds)) {
            XCTAssertTrue("\($0)".contains("Invalid data"))
        }
    }

    func testHostnameIsNormalised() throws {
        let info = RemoteImportDiskInfo.sign(index: 0, host: "Node1.Example.COM.", port: 1234, magic: "mag111", secret: cds, salt: "s")
        XCTAssertEqual(try RemoteImportDiskInfo.check(info, index: 0, secret: cds).host, "node1.example.com")
        let v6 = RemoteImportDiskInfo.sign(index: 0, host: "2001:db8::1:4563", port: 1234, magic: "mag111", secret: cds, salt: "s")
        XCTAssertEqual(try RemoteImportDiskInfo.check(v6, index: 0, secret: cds).host, "2001:db8::1:4563")
    }

    func testStreamPrefix() {
        let prefix = "M=" + ImportExportMagic.compute(base: "a1b2c3d4e5f6", instanceName: "inst1.example.com", index: 1)
        XCTAssertEqual(prefix, "M=25390468911458de5144611d1f96d5d0d50ddce5")
        XCTAssertEqual(prefix.utf8.count, 42)
    }
}
