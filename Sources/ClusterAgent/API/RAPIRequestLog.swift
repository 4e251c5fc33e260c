import Foundation
import Hummingbird

/// The agent's log: one line per RAPI request (method, path, user, status, time), an audit
/// line for every job a write request starts (who asked for what), and every state change of a
/// job. Lines go to stderr, where journald keeps them with their time (`journalctl -u
/// gnt-move-agent`). Passwords never appear: only the Basic user name is taken.
public enum AgentLog {
    /// Writes one line to stderr (one write, so lines of concurrent requests do not interleave).
    static func line(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }

    /// The user of the write request being served, for the audit line of the job it starts.
    @TaskLocal static var writer: String?

    /// `audit: USER submitted job N: SUMMARY`, when a write request started the job.
    static func jobSubmitted(_ id: Int64, summary: String) {
        guard let writer else { return }
        line("audit: \(writer) submitted job \(id): \(summary)")
    }

    /// `job N SUMMARY: STATE[: detail]`.
    static func job(_ id: Int64, _ summary: String, _ state: String, detail: String? = nil) {
        line("job \(id) \(summary): \(state)" + (detail.map { ": \($0)" } ?? ""))
    }
}

/// Logs every request once it is answered, with the status the client got (the error
/// middleware inside it has turned failures into responses), and marks a write request's user
/// for the audit lines of the jobs it starts.
struct RAPIRequestLogMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let started = ContinuousClock.now
        let user = request.headers[.authorization].flatMap(RAPIAuthMiddleware<Context>.basicCredentials)?.0
        let write = RAPIAuthMiddleware<Context>.needsWrite(request)
        var status = "error"
        defer {
            let elapsed = ContinuousClock.now - started
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
            AgentLog.line("rapi: \(request.method.rawValue) \(request.uri.path) user=\(user.map(Self.printable) ?? "-") status=\(status) time=\(String(format: "%.3f", seconds))s")
        }
        let response = try await AgentLog.$writer.withValue(write ? user.map(Self.printable) : nil) {
            try await next(request, context)
        }
        status = String(response.status.code)
        return response
    }

    /// A user name as sent by a client, safe for one log line.
    static func printable(_ name: String) -> String {
        String(name.prefix(64).map { $0.isLetter || $0.isNumber || "._-@".contains($0) ? $0 : "?" })
    }
}
