import Foundation
import MoveTrust
import TestSupport
import XCTest

/// The command-line contract as `--help` shows it: every command, found by walking the
/// SUBCOMMANDS sections from the root (so a new command is covered without naming it here), has
/// an abstract, and every argument and option says what it does; the exit codes are listed once,
/// in the root help, the same as in the README, and the code does what the table says.
final class HelpTextTests: XCTestCase {
    /// One entry of a help section: `label` and its description (wrapped lines joined).
    struct Entry: CustomStringConvertible {
        let label: String
        let text: String
        var description: String { "\(label): \(text.isEmpty ? "(no description)" : text)" }
    }

    /// A parsed `--help` page.
    struct HelpPage {
        let command: [String]
        let text: String
        /// The first line after `OVERVIEW:`, the command's abstract.
        let overview: String
        /// `ARGUMENTS`, `OPTIONS`, `SUBCOMMANDS` and any titled option group, by header.
        let sections: [String: [Entry]]
        /// Lines that looked like an entry but could not be read as one.
        let unreadable: [String]

        var name: String { (["gnt-move"] + command).joined(separator: " ") }

        init(command: [String], text: String) {
            self.command = command
            self.text = text
            let lines = text.components(separatedBy: "\n")
            overview = lines.first { $0.hasPrefix("OVERVIEW:") }.map { String($0.dropFirst("OVERVIEW:".count)).trimmingCharacters(in: .whitespaces) } ?? ""
            var sections: [String: [Entry]] = [:]
            var unreadable: [String] = []
            var header: String?
            var entryLines: [[String]] = []
            func close() {
                guard let header else { return }
                sections[header, default: []] += entryLines.compactMap { lines in
                    guard let entry = Self.entry(lines, subcommand: header == "SUBCOMMANDS") else {
                        unreadable.append(lines.joined(separator: "\n"))
                        return nil
                    }
                    return entry
                }
                entryLines = []
            }
            for line in lines {
                if line.range(of: #"^[A-Z][A-Z -]*:$"#, options: .regularExpression) != nil {
                    close()
                    header = String(line.dropLast())
                    if ["OVERVIEW", "USAGE"].contains(header) { header = nil }
                } else if line.trimmingCharacters(in: .whitespaces).isEmpty || line.first?.isWhitespace == false {
                    // A blank line ends a section's entries ("See 'gnt-move help …'" follows one).
                    close()
                    header = nil
                } else if header != nil {
                    if line.hasPrefix("  ") && !line.hasPrefix("   ") { entryLines.append([line]) }
                    else if !entryLines.isEmpty { entryLines[entryLines.count - 1].append(line) }
                    else { unreadable.append(line) }
                }
            }
            close()
            self.sections = sections
            self.unreadable = unreadable
        }

        /// `  LABEL   description…` with the description on the same line (a label shorter than
        /// the label column) or on the following, deeper-indented lines.
        static func entry(_ lines: [String], subcommand: Bool) -> Entry? {
            let first = lines[0].dropFirst(2)
            var words = first.split(separator: " ", omittingEmptySubsequences: false).map(String.init)
            var label: [String] = []
            if subcommand {
                label.append(words.removeFirst())
                if words.first == "(default)" { label.append(words.removeFirst()) }
            } else {
                // Names (`-v,` `--verbose` `--start/--no-start`), a value (`<FILE>`), `...`.
                while let word = words.first, word.hasPrefix("-") || (word.hasPrefix("<") && word.hasSuffix(">")) || word == "..." {
                    label.append(words.removeFirst())
                }
            }
            guard !label.isEmpty else { return nil }
            let sameLine = words.joined(separator: " ")
            let text = ([sameLine] + lines.dropFirst()).joined(separator: " ")
                .split(whereSeparator: \.isWhitespace).joined(separator: " ")
            return Entry(label: label.joined(separator: " "), text: text)
        }
    }

    func page(_ command: [String]) throws -> HelpPage {
        let result = try gntMove(arguments: command + ["--help"])
        XCTAssertEqual(result.status, 0, "\(command) --help: \(result.stderr)")
        XCTAssertEqual(result.stderr, "", "\(command) --help")
        return HelpPage(command: command, text: result.stdout)
    }

    /// The root and every command and subcommand under it, depth first.
    func allPages() throws -> [HelpPage] {
        var pages: [HelpPage] = []
        var pending: [[String]] = [[]]
        while let command = pending.popLast() {
            let help = try page(command)
            pages.append(help)
            pending += (help.sections["SUBCOMMANDS"] ?? []).reversed().map { command + [String($0.label.split(separator: " ")[0])] }
        }
        return pages
    }

    /// A description with ArgumentParser's own additions removed: what the help string says.
    static func ownWords(_ text: String) -> String {
        var text = text
        while let range = text.range(of: #"\s*\((values|default): [^()]*\)\s*$"#, options: .regularExpression) {
            text.removeSubrange(range)
        }
        return text.trimmingCharacters(in: .whitespaces)
    }

    func testEveryCommandHasAnAbstractAndEveryArgumentAndOptionADescription() throws {
        let pages = try allPages()
        let names = Set(pages.map(\.name))
        // The walk found the commands (a parser that silently found none would pass).
        for known in ["gnt-move", "gnt-move move", "gnt-move run", "gnt-move batch", "gnt-move agent init", "gnt-move agent add-instance",
                      "gnt-move x509 verify", "gnt-move spec sign", "gnt-move import-export", "gnt-move bench stream", "gnt-move secret new"] {
            XCTAssertTrue(names.contains(known), "\(known) not found by walking the SUBCOMMANDS sections: \(names.sorted())")
        }
        var described = 0
        for page in pages {
            XCTAssertFalse(page.overview.isEmpty, "\(page.name) has no abstract:\n\(page.text)")
            XCTAssertEqual(page.unreadable, [], "\(page.name): help lines not read as entries")
            let options = page.sections["OPTIONS"] ?? []
            XCTAssertTrue(options.contains { $0.label == "-h, --help" && $0.text == "Show help information." },
                          "\(page.name): the OPTIONS section was not read: \(options)")
            for (header, entries) in page.sections {
                for entry in entries {
                    let words = header == "SUBCOMMANDS" ? entry.text : Self.ownWords(entry.text)
                    XCTAssertNotNil(words.rangeOfCharacter(from: .letters), "\(page.name) \(header): \(entry.label) has no description:\n\(page.text)")
                    described += 1
                }
            }
        }
        XCTAssertGreaterThan(described, 150, "entries read from \(pages.count) help pages")
    }

    /// The table's rows in the root help (`  0   Success: …`, wrapped lines joined).
    static func exitCodeRows(_ help: String) -> [String: String] {
        guard let start = help.range(of: "EXIT CODES") else { return [:] }
        var rows: [String: String] = [:]
        var current: String?
        for line in help[start.upperBound...].components(separatedBy: "\n").dropFirst() {
            if line.trimmingCharacters(in: .whitespaces).isEmpty { break }
            let words = line.split(separator: " ").map(String.init)
            if line.hasPrefix("  "), !line.hasPrefix("   "), let code = words.first, Int(code) != nil {
                current = code
                rows[code] = words.dropFirst().joined(separator: " ")
            } else if let current {
                rows[current, default: ""] += " " + words.joined(separator: " ")
            }
        }
        return rows
    }

    func testExitCodesAreListedOnceInTheRootHelpAndTheReadme() throws {
        let pages = try allPages()
        let root = try XCTUnwrap(pages.first { $0.command.isEmpty })
        let rows = Self.exitCodeRows(root.text)
        XCTAssertEqual(rows.keys.sorted { Int($0)! < Int($1)! }, ["0", "1", "2", "64"], root.text)
        XCTAssertTrue(rows["2"]?.contains("run:") == true && rows["2"]?.contains("batch:") == true, "\(rows)")

        // The README's table says the same (its backticks aside).
        let readme = try String(contentsOfFile: Repository.path("README.md"), encoding: .utf8)
        var readmeRows: [String: String] = [:]
        for line in readme.components(separatedBy: "\n") {
            let cells = line.split(separator: "|").map { $0.trimmingCharacters(in: .whitespaces) }
            if line.hasPrefix("| "), cells.count == 2, rows[cells[0]] != nil {
                readmeRows[cells[0]] = cells[1].replacingOccurrences(of: "`", with: "")
            }
        }
        XCTAssertEqual(readmeRows, rows, "README.md's exit-code table and `gnt-move --help` differ")

        // Every other page points there instead of keeping its own list.
        let pointer = "Exit codes: see 'gnt-move --help'."
        for page in pages where !page.command.isEmpty {
            let text = page.text.split(whereSeparator: \.isWhitespace).joined(separator: " ")
            let mentions = text.lowercased().components(separatedBy: "exit code").count - 1
            let pointers = text.components(separatedBy: pointer).count - 1
            XCTAssertEqual(mentions, pointers, "\(page.name) describes exit codes itself:\n\(page.text)")
            if [["move"], ["run"], ["batch"], ["import-export"]].contains(page.command) {
                XCTAssertEqual(pointers, 1, "\(page.name) does not point to the table:\n\(page.text)")
            }
        }
    }

    /// Each row of the table, as the code does it (cases that need no cluster).
    func testExitCodesMatchTheTable() throws {
        let folder = TemporaryDirectory("exit-codes")
        let caFile = Repository.path("certs") + "/test-a.pem"
        let secret = Repository.path("certs") + "/test-secret"
        let notADirectory = folder.write("file", "") + "/state"

        // 0
        XCTAssertEqual(try gntMove("magic", "--base", "0123456789ab", "--instance", "vm1", "--index", "0").status, 0)
        XCTAssertEqual(try gntMove("move", "--help").status, 0)

        // 1: a refused check; a state directory that cannot be created (for move as for run and
        // batch), one `gnt-move:` line on stderr.
        let refused = try gntMove("handshake", "check", "--secret", secret, #"[0, "00", "salt"]"#)
        XCTAssertEqual(refused.status, 1, refused.stderr)
        let request: JSONValue = .object([
            "source": .object(["host": .string("127.0.0.1"), "ca_file": .string(caFile)]),
            "moves": .array([.object(["instance": .string("vm1")])]),
            "state_dir": .string(notADirectory),
        ])
        let batchFile = folder.write("batch.json", request.serialized)
        let unusableState = [
            ("move", try gntMove("move", "127.0.0.1", "127.0.0.1", "vm1", "--src-ca-file", caFile, "--state-dir", notADirectory)),
            ("run", try gntMove("run", stdin: request.serialized)),
            ("batch", try gntMove("batch", batchFile)),
        ]
        for (command, result) in [("handshake check", refused)] + unusableState {
            XCTAssertEqual(result.status, 1, "\(command): \(result.stderr)")
            let lines = result.stderr.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "\(command): \(result.stderr)")
            XCTAssertTrue(lines.first?.hasPrefix("gnt-move: ") == true, "\(command): \(result.stderr)")
        }
        for (command, result) in unusableState {
            XCTAssertEqual(result.stderr, "gnt-move: cannot create the state directory \(notADirectory): Not a directory\n", command)
        }

        // 2: run and batch input that is not a valid request.
        let notJSON = try gntMove("run", stdin: "not json")
        XCTAssertEqual(notJSON.status, 2, notJSON.stderr)
        XCTAssertEqual(try JSONValue(parsing: notJSON.stdout)["event"]?.stringValue, "request-invalid")
        XCTAssertEqual(try gntMove("batch", folder.write("bad.json", "{}")).status, 2)

        // 64: the command line itself; -H/-B/-O are checked with it, as --net is, before
        // anything is created.
        let state = folder.file("state")
        XCTAssertEqual(try gntMove("no-such-command").status, 64)
        XCTAssertEqual(try gntMove("status", "--no-such-option").status, 64)
        for (option, value) in [("-H", "kernel_path"), ("-B", "=1"), ("-O", "a=1,b"), ("--net", "x")] {
            let result = try gntMove("move", "127.0.0.1", "127.0.0.1", "vm1", "--src-ca-file", caFile, "--state-dir", state, option, value)
            XCTAssertEqual(result.status, 64, "\(option) \(value): \(result.stderr)")
            XCTAssertTrue(result.stderr.contains("Usage: gnt-move move"), result.stderr)
            XCTAssertEqual(result.stdout, "")
        }
        XCTAssertTrue(try gntMove("move", "a", "b", "vm1", "--src-ca-file", caFile, "--state-dir", state, "-B", "=1")
            .stderr.contains("Error: -B: '=1' is not key=value"))
        XCTAssertFalse(FileManager.default.fileExists(atPath: state), "nothing was created")
    }
}
