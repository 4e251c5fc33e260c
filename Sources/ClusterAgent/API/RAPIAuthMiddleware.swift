import Foundation
import Hummingbird
import MoveTrust

/// HTTP Basic authentication as Ganeti's RAPI does it: writes (and `GET /2/jobs/ID/wait`) need a
/// user with the `write` option; open GETs need none, but credentials that are sent are checked.
/// `GET /metrics` (gnt-move's) needs a user, read-only or not.
/// The users file is re-read when it changes, as Ganeti reloads it on SIGHUP.
///
/// The decision is made before any body is read, on the canonical path
/// (``CanonicalPathResponder`` runs before routing), and leans towards refusal: every method but
/// GET and HEAD is a write, and so is any path that does not parse as canonical.
struct RAPIAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let usersPath: String

    static func needsWrite(_ request: Request) -> Bool {
        guard request.method == .get || request.method == .head else { return true }
        guard let path = try? RAPIPath(raw: request.uri.path) else { return true }
        return path.isJobWait
    }

    /// Reads that are not open: the metrics (any spelling of the path).
    static func needsUser(_ request: Request) -> Bool {
        guard let path = try? RAPIPath(raw: request.uri.path) else { return true }
        return path.components.map { $0.lowercased() } == [RAPIRouter.metricsPath]
    }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let needsWrite = Self.needsWrite(request)
        let header = request.headers[.authorization]
        if !needsWrite && !Self.needsUser(request) && header == nil { return try await next(request, context) }
        guard let header, let (name, password) = Self.basicCredentials(header) else {
            return Self.unauthorized
        }
        let users = (try? UsersFile.load(path: usersPath)) ?? UsersFile(text: "")
        guard let user = users.authenticate(user: name, password: password) else {
            return Self.unauthorized
        }
        if needsWrite && !user.canWrite {
            return RAPIResponse.error(.forbidden, "Forbidden")
        }
        return try await next(request, context)
    }

    static var unauthorized: Response {
        RAPIResponse.error(.unauthorized, "Unauthorized", extraHeaders: [.wwwAuthenticate: "Basic realm=\"\(UsersFile.realm)\""])
    }

    /// `Basic base64(user:password)`; nil for any other scheme or a malformed value.
    static func basicCredentials(_ header: String) -> (String, String)? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic" else { return nil }
        guard let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else {
            return nil
        }
        return (String(text[..<colon]), String(text[text.index(after: colon)...]))
    }
}
