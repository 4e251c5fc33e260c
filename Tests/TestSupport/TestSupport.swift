import Foundation

/// Paths of the repository and the built products, for tests that run real files and processes.
public enum Repository {
    /// The package root (this file is Tests/TestSupport/TestSupport.swift).
    public static let root: String = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path

    public static func path(_ relative: String) -> String { root + "/" + relative }

    /// The folder that holds the test bundle and the built executables.
    public static let productsDirectory: String = {
        var url = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        while url.path != "/" && !url.lastPathComponent.hasSuffix(".xctest") { url.deleteLastPathComponent() }
        if url.path == "/" { url = URL(fileURLWithPath: CommandLine.arguments[0]) }
        return url.deletingLastPathComponent().path
    }()

    public static var gntMove: String { productsDirectory + "/gnt-move" }
}

/// A folder removed when the value goes away.
public final class TemporaryDirectory: @unchecked Sendable {
    public let path: String

    public init(_ label: String = "test") {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("gnt-move-\(label)-\(UUID().uuidString)")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        path = url.path
    }

    public func file(_ name: String) -> String { path + "/" + name }

    @discardableResult
    public func write(_ name: String, _ contents: String, mode: Int = 0o644) -> String {
        let target = file(name)
        FileManager.default.createFile(atPath: target, contents: Data(contents.utf8), attributes: [.posixPermissions: mode])
        return target
    }

    deinit {
        // Key files are mode 0400; removal needs only the directory's write bit.
        try? FileManager.default.removeItem(atPath: path)
    }
}

/// The outcome of a finished subprocess.
public struct ProcessResult: Sendable {
    public let status: Int32
    public let stdout: String
    public let stderr: String
}

/// Runs a real subprocess to completion. Output goes through files, so a chatty child can never
/// block on a full pipe.
public func runProcess(_ executable: String, _ arguments: [String], stdin: String? = nil,
                       environment: [String: String]? = nil, currentDirectory: String? = nil) throws -> ProcessResult {
    let scratch = TemporaryDirectory("proc")
    let outPath = scratch.file("stdout"), errPath = scratch.file("stderr"), inPath = scratch.file("stdin")
    FileManager.default.createFile(atPath: outPath, contents: nil)
    FileManager.default.createFile(atPath: errPath, contents: nil)
    FileManager.default.createFile(atPath: inPath, contents: Data((stdin ?? "").utf8))
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    if let environment { process.environment = environment }
    if let currentDirectory { process.currentDirectoryURL = URL(fileURLWithPath: currentDirectory) }
    let out = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
    let err = try FileHandle(forWritingTo: URL(fileURLWithPath: errPath))
    let input = try FileHandle(forReadingFrom: URL(fileURLWithPath: inPath))
    process.standardOutput = out
    process.standardError = err
    process.standardInput = input
    try process.run()
    process.waitUntilExit()
    try out.close(); try err.close(); try input.close()
    return ProcessResult(status: process.terminationStatus,
                         stdout: (try? String(contentsOfFile: outPath, encoding: .utf8)) ?? "",
                         stderr: (try? String(contentsOfFile: errPath, encoding: .utf8)) ?? "")
}

/// Runs the built `gnt-move` executable.
public func gntMove(_ arguments: String..., stdin: String? = nil) throws -> ProcessResult {
    try runProcess(Repository.gntMove, arguments, stdin: stdin)
}

public func gntMove(arguments: [String], stdin: String? = nil) throws -> ProcessResult {
    try runProcess(Repository.gntMove, arguments, stdin: stdin)
}

/// Finds an executable on PATH, or nil.
public func which(_ name: String) -> String? {
    for folder in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
        let candidate = "\(folder)/\(name)"
        if FileManager.default.isExecutableFile(atPath: candidate) { return candidate }
    }
    return nil
}
