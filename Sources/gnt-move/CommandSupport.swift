import ArgumentParser
import Foundation
import MoveCoordinator

/// A failure to report to the operator as one line, `gnt-move: <message>`, with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A command whose failures print one line on stderr and exit 1 (not ArgumentParser's usage
/// text, which is for mistakes in the command line itself).
protocol ReportingCommand: ParsableCommand {
    func execute() throws
}

extension ReportingCommand {
    func run() throws {
        do {
            try execute()
        } catch let error as ExitCode {
            throw error
        } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(1)
        }
    }
}

/// ``ReportingCommand`` for commands that await.
protocol AsyncReportingCommand: AsyncParsableCommand {
    func execute() async throws
}

extension AsyncReportingCommand {
    func run() async throws {
        do {
            try await execute()
        } catch let error as ExitCode {
            throw error
        } catch {
            Console.error("gnt-move: \(error)")
            throw ExitCode(1)
        }
    }
}

enum Console {
    static func error(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    static func json(_ value: JSONValue) {
        print(value.serialized)
    }
}

/// `--secret FILE`: the cluster domain secret.
struct SecretOption: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Cluster domain secret file (Ganeti's format).", valueName: "FILE"))
    var secret: String

    func load() throws -> ClusterDomainSecret { try ClusterDomainSecret.load(path: secret) }
}

enum InputText {
    /// Reads `argument`: `-` for stdin, `@PATH` for a file, otherwise the text itself.
    static func inline(_ argument: String, what: String) throws -> (text: String, origin: String) {
        if argument == "-" { return (try stdin(what: what), "stdin") }
        if argument.hasPrefix("@") { return (try file(String(argument.dropFirst()), what: what), String(argument.dropFirst())) }
        return (argument, "argument")
    }

    /// Reads a file, or stdin for `-`.
    static func file(_ path: String, what: String) throws -> String {
        if path == "-" { return try stdin(what: what) }
        guard FileManager.default.fileExists(atPath: path) else { throw CLIError("\(path): \(what) file does not exist") }
        guard let data = FileManager.default.contents(atPath: path) else { throw CLIError("\(path): \(what) file cannot be read") }
        guard let text = String(data: data, encoding: .utf8) else { throw CLIError("\(path): \(what) is not UTF-8 text") }
        guard !text.isEmpty else { throw CLIError("\(path): \(what) file is empty") }
        return text
    }

    static func stdin(what: String) throws -> String {
        let data = FileHandle.standardInput.readDataToEndOfFile()
        guard let text = String(data: data, encoding: .utf8), !text.isEmpty else {
            throw CLIError("stdin: expected \(what)")
        }
        return text
    }

    static func json(_ argument: String, what: String) throws -> JSONValue {
        let (text, origin) = try inline(argument, what: what)
        do {
            return try JSONValue(parsing: text)
        } catch {
            throw CLIError("\(origin): \(what) is not valid JSON: \(error)")
        }
    }
}
