import BlockStream
import Foundation
@testable import gnt_move
import MoveTrust
import TestSupport
import XCTest

/// The typed command lines: the daemon's options survive rendering and parsing, and a value
/// outside a closed set is refused before anything is created, naming the accepted ones.
final class ClosedSetArgumentTests: XCTestCase {
    let caFile = Repository.path("certs") + "/test-a.pem"
    static let compressionChoices = "Please provide one of 'none', 'gzip', 'gzip-fast', 'gzip-slow' or 'zstd'."

    /// Every option set to something other than its default, on one side or the other.
    static var daemonOptions: [ImportExportOptions] {
        var exporting = ImportExportOptions(mode: .export, keyPath: "/keys/own.key", certificatePath: "/keys/own.pem",
                                            caPath: "/keys/peer.pem", connectTimeout: 7.5)
        exporting.statusFile = "/run/export.status"
        exporting.family = .ipv6
        exporting.host = "::1"
        exporting.port = 40123
        exporting.connectRetries = 3
        exporting.handshakeTimeout = 2.25
        exporting.stream.compression = .gzipSlow
        exporting.stream.magic = "abc-def_0.1"
        exporting.stream.chunkDigest = .sha256
        exporting.expectedSize = 5 << 20
        exporting.path = "/dev/vg/disk0"
        exporting.streamProtocol = .v1
        exporting.resume = true
        exporting.bandwidthLimit = 12_345_678
        exporting.journalPath = "/run/export.journal"
        exporting.abortAfter = 1 << 30
        exporting.reconnectWindow = 45.5
        exporting.precopy = true
        var importing = ImportExportOptions(mode: .import, keyPath: "/keys/b.key", certificatePath: "/keys/b.pem", caPath: "/keys/a.pem")
        importing.statusFile = "/run/import.status"
        importing.bind = "192.0.2.7"
        importing.port = 0
        importing.stream.compression = .zstd
        importing.path = "/srv/disks/vm1.disk0"
        importing.streamProtocol = .ganeti
        importing.targetIsZero = true
        importing.reconnectWindow = 120
        var defaults = ImportExportOptions(mode: .import, keyPath: "k", certificatePath: "c", caPath: "a")
        defaults.statusFile = "status"
        var warmImport = ImportExportOptions(mode: .import, keyPath: "k", certificatePath: "c", caPath: "a")
        warmImport.statusFile = "status"
        warmImport.warm = true
        warmImport.compare = true
        var rangedImport = ImportExportOptions(mode: .import, keyPath: "k", certificatePath: "c", caPath: "a")
        rangedImport.statusFile = "status"
        rangedImport.portRange = try? PortRange(low: 60000, high: 60100)
        return [exporting, importing, defaults, warmImport, rangedImport]
    }

    /// Help text with its line wrapping undone.
    func help(_ arguments: String...) throws -> String {
        try gntMove(arguments: arguments + ["--help"]).stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    func testDaemonOptionsRoundTripThroughTheCommandLine() throws {
        var rendered: Set<String> = []
        for options in Self.daemonOptions {
            let arguments = [ImportExportOptions.subcommand] + options.commandLine
            rendered.formUnion(arguments)
            let command = try XCTUnwrap(try GntMove.parseAsRoot(arguments) as? ImportExportCommand, arguments.joined(separator: " "))
            XCTAssertEqual(command.options, options, arguments.joined(separator: " "))
        }
        let flags = ImportExportOptions.Option.allCases.map(\.flag) + AddressFamily.allCases.map { "--" + $0.rawValue }
        XCTAssertEqual(flags.filter { !rendered.contains($0) }, [], "every option is covered by the round trip")
    }

    func testMoveRefusesAnUnknownCompressionAtOnce() throws {
        let state = TemporaryDirectory("closed-sets").file("state")
        let result = try gntMove("move", "127.0.0.1", "127.0.0.1", "vm1", "--src-ca-file", caFile, "--state-dir", state, "--compress", "zst")
        XCTAssertEqual(result.status, 64)
        XCTAssertTrue(result.stderr.contains("The value 'zst' is invalid for '--compress <compress>'. \(Self.compressionChoices)"), result.stderr)
        XCTAssertEqual(result.stdout, "")
        XCTAssertFalse(FileManager.default.fileExists(atPath: state), "nothing was created")
    }

    func testRunRefusesAnUnknownCompressionAsABadRequest() throws {
        let state = TemporaryDirectory("closed-sets").file("state")
        let request: JSONValue = .object([
            "source": .object(["host": .string("127.0.0.1"), "port": .int(5080), "ca_file": .string(caFile)]),
            "moves": .array([.object(["instance": .string("vm1"), "compress": .string("zst")])]),
            "state_dir": .string(state),
        ])
        let result = try gntMove("run", stdin: request.serialized)
        XCTAssertEqual(result.status, 2, result.stderr)
        let event = try JSONValue(parsing: result.stdout)
        XCTAssertEqual(event["event"]?.stringValue, "request-invalid")
        XCTAssertEqual(event["reason"]?.stringValue, "bad-request")
        XCTAssertEqual(event["message"]?.stringValue, "moves[0]: 'compress' is \"zst\"; expected one of none, gzip, gzip-fast, gzip-slow, zstd")
        XCTAssertFalse(FileManager.default.fileExists(atPath: state), "nothing was created")
    }

    func testDaemonRefusesAnUnknownProtocolAndBothFamilies() throws {
        let base = ["import-export", "status", "import", "--key", "k", "--cert", "c", "--ca", "a"]
        let badProtocol = try gntMove(arguments: base + ["--protocol", "v2"])
        XCTAssertEqual(badProtocol.status, 64)
        XCTAssertTrue(badProtocol.stderr.contains("The value 'v2' is invalid for '--protocol <protocol>'. Please provide one of 'auto', 'ganeti' or 'v1'."), badProtocol.stderr)
        let bothFamilies = try gntMove(arguments: base + ["--ipv4", "--ipv6"])
        XCTAssertEqual(bothFamilies.status, 64, bothFamilies.stderr)
    }

    func testHelpListsExactlyTheAcceptedValues() throws {
        let compressions = "(values: none, gzip, gzip-fast, gzip-slow, zstd; default: none)"
        XCTAssertTrue(try help("move").contains(compressions))
        XCTAssertTrue(try help("import-export").contains(compressions))
        let initHelp = try help("agent", "init")
        XCTAssertTrue(initHelp.contains("(values: fake, command, libvirt)"), initHelp)
        XCTAssertTrue(initHelp.contains("(values: kvm, xen-pvm, xen-hvm, lxc, chroot, fake; default: kvm)"), initHelp)
        let typo = try gntMove("agent", "init", "--dir", "/nonexistent/agent", "--cluster-name", "c", "--hypervisor-driver", "comand")
        XCTAssertEqual(typo.status, 64)
        XCTAssertTrue(typo.stderr.contains("The value 'comand' is invalid for '--hypervisor-driver <hypervisor-driver>'. Please provide one of 'fake', 'command' or 'libvirt'."), typo.stderr)
    }
}
