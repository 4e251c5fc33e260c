import Foundation
import TestSupport
import XCTest

/// What an admin installs on a host: the systemd units (checked by systemd itself) and
/// scripts/install's layout under a prefix inside DESTDIR.
final class ServiceLayoutTests: XCTestCase {
    static let units = ["gnt-move-agent.service", "gnt-move-batch.service", "gnt-move-batch.timer"]

    /// `systemd-analyze verify` only warns about an unknown key or a bad value (and exits 0), so
    /// any output at all fails the test. The units name the built executable, since verify checks
    /// that ExecStart exists.
    func testShippedUnitsVerifyWithoutAWord() throws {
        let analyze = "/usr/bin/systemd-analyze"
        guard FileManager.default.isExecutableFile(atPath: analyze) else { throw XCTSkip("systemd-analyze is not installed (Debian: systemd)") }
        let folder = TemporaryDirectory("units")
        let bindir = URL(fileURLWithPath: Repository.gntMove).deletingLastPathComponent().path
        var rendered: [String] = []
        for unit in Self.units {
            let text = try String(contentsOfFile: Repository.path("dist/systemd/\(unit)"), encoding: .utf8)
            XCTAssertTrue(text.contains("@BINDIR@/gnt-move") || unit.hasSuffix(".timer"), "\(unit) runs the installed binary")
            try text.replacingOccurrences(of: "@BINDIR@", with: bindir).write(toFile: folder.file(unit), atomically: true, encoding: .utf8)
            rendered.append(folder.file(unit))
        }
        let result = try runProcess(analyze, ["verify", "--man=no"] + rendered)
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertEqual(result.stdout + result.stderr, "", "systemd-analyze had something to say about the units")

        // The check would notice a mistake: a unit with an unknown key is reported.
        let broken = folder.file("broken.service")
        try (try String(contentsOfFile: rendered[0], encoding: .utf8)).replacingOccurrences(of: "NoNewPrivileges=yes", with: "NoNewPrivilege=yes")
            .write(toFile: broken, atomically: true, encoding: .utf8)
        let complaint = try runProcess(analyze, ["verify", "--man=no", broken])
        XCTAssertTrue((complaint.stdout + complaint.stderr).contains("NoNewPrivilege"), complaint.stdout + complaint.stderr)
    }

    /// The agent's unit serves the default agent directory with the sandbox an admin expects.
    func testTheAgentUnitServesTheDefaultDirectorySandboxed() throws {
        let text = try String(contentsOfFile: Repository.path("dist/systemd/gnt-move-agent.service"), encoding: .utf8)
        XCTAssertTrue(text.contains("ExecStart=@BINDIR@/gnt-move agent serve --dir /var/lib/gnt-move/agent"), text)
        for option in ["NoNewPrivileges=yes", "ProtectSystem=strict", "ProtectHome=yes", "PrivateTmp=yes", "StateDirectory=gnt-move",
                       "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6", "SystemCallFilter=@system-service"] {
            XCTAssertTrue(text.contains(option + "\n"), "gnt-move-agent.service lacks \(option)")
        }
        for command in ["init", "serve", "add-instance"] {
            let help = try gntMove("agent", command, "--help").stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            XCTAssertTrue(help.contains("(default: /var/lib/gnt-move/agent)"), help)
        }
    }

    /// DESTDIR and --prefix are honoured; the binary, units naming the installed binary, one
    /// manual page per command and the completions land where Debian's tools look for them.
    func testInstallPutsEverythingUnderThePrefixInsideDestdir() throws {
        let pages = Repository.path(".build/plugins/GenerateManual/outputs/gnt-move")
        guard (try? FileManager.default.contentsOfDirectory(atPath: pages))?.contains(where: { $0.hasSuffix(".1") }) == true else {
            return XCTFail("no manual pages in \(pages): scripts/test generates them (swift package generate-manual --multi-page)")
        }
        let destdir = TemporaryDirectory("install")
        let result = try runProcess("/bin/bash", [Repository.path("scripts/install"), "--prefix", "/opt/gm/", "--binary", Repository.gntMove, "--man-dir", pages],
                                    environment: ProcessInfo.processInfo.environment.merging(["DESTDIR": destdir.path + "/"]) { $1 })
        XCTAssertEqual(result.status, 0, result.stderr)
        let root = destdir.path + "/opt/gm"
        let binary = root + "/bin/gnt-move"
        XCTAssertTrue(FileManager.default.isExecutableFile(atPath: binary))
        XCTAssertEqual(try gntMoveVersion(binary), try gntMoveVersion(Repository.gntMove))
        for unit in Self.units {
            let text = try String(contentsOfFile: root + "/lib/systemd/system/" + unit, encoding: .utf8)
            XCTAssertFalse(text.contains("@BINDIR@"), unit)
            XCTAssertFalse(text.contains(destdir.path), "\(unit) names the path it runs from, not DESTDIR")
            if unit.hasSuffix(".service") { XCTAssertTrue(text.contains("ExecStart=/opt/gm/bin/gnt-move "), text) }
        }
        let installedPages = try FileManager.default.contentsOfDirectory(atPath: root + "/share/man/man1")
        for page in ["gnt-move.1", "gnt-move.agent.serve.1", "gnt-move.move.1", "gnt-move.batch.1"] {
            XCTAssertTrue(installedPages.contains(page), "\(page) among \(installedPages.sorted())")
        }
        let manual = try runProcess("/usr/bin/man", ["--warnings", "-l", root + "/share/man/man1/gnt-move.move.1"],
                                    environment: ["MANPAGER": "cat", "PATH": "/usr/bin:/bin", "COLUMNS": "100"])
        XCTAssertEqual(manual.status, 0, manual.stderr)
        XCTAssertTrue(manual.stdout.contains("--preflight"), manual.stdout)
        let bash = root + "/share/bash-completion/completions/gnt-move"
        XCTAssertEqual(try runProcess("/bin/bash", ["-n", bash]).status, 0)
        XCTAssertTrue(try String(contentsOfFile: bash, encoding: .utf8).contains("agent"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/share/zsh/site-functions/_gnt-move"))
        XCTAssertTrue(FileManager.default.fileExists(atPath: root + "/share/fish/vendor_completions.d/gnt-move.fish"))
    }

    func testInstallRefusesARelativePrefixAndUnknownArguments() throws {
        let destdir = TemporaryDirectory("install-bad")
        let environment = ProcessInfo.processInfo.environment.merging(["DESTDIR": destdir.path]) { $1 }
        let relative = try runProcess("/bin/bash", [Repository.path("scripts/install"), "--prefix", "usr/local", "--binary", Repository.gntMove],
                                      environment: environment)
        XCTAssertEqual(relative.status, 64)
        XCTAssertTrue(relative.stderr.contains("--prefix must be an absolute path"), relative.stderr)
        let unknown = try runProcess("/bin/bash", [Repository.path("scripts/install"), "--perfix", "/usr"], environment: environment)
        XCTAssertEqual(unknown.status, 64)
        XCTAssertTrue(unknown.stderr.contains("unknown argument '--perfix'"), unknown.stderr)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: destdir.path), [], "nothing was installed")
    }

    private func gntMoveVersion(_ binary: String) throws -> String {
        try runProcess(binary, ["--version"]).stdout
    }
}
