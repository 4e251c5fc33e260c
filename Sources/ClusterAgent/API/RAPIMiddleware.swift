import Foundation
import Hummingbird
import MoveTrust

/// Turns every failure into Ganeti's JSON error body.
struct RAPIErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as RAPIHTTPError {
            return RAPIResponse.error(error.status, error.message)
        } catch let error as AgentError where error.ecode == "unknown_entity" {
            return RAPIResponse.error(.notFound, error.message)
        } catch let error as AgentError {
            return RAPIResponse.error(.badRequest, error.message)
        } catch let error as HTTPError where error.status == .notFound {
            return RAPIResponse.error(.notFound, "Not Found")
        } catch let error as HTTPError {
            return RAPIResponse.error(error.status, error.body ?? error.status.reasonPhrase)
        } catch {
            return RAPIResponse.error(.internalServerError, "\(error)")
        }
    }
}

/// HTTP Basic authentication as Ganeti's RAPI does it: writes (and `GET /2/jobs/ID/wait`) need a
/// user with the `write` option; open GETs need none, but credentials that are sent are checked.
/// The users file is re-read when it changes, as Ganeti reloads it on SIGHUP.
struct RAPIAuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let usersPath: String

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let needsWrite = request.method != .get || request.uri.path.hasSuffix("/wait")
        let header = request.headers[.authorization]
        if !needsWrite && header == nil { return try await next(request, context) }
        let challenge: HTTPFields = [.wwwAuthenticate: "Basic realm=\"\(UsersFile.realm)\""]
        guard let header else {
            return RAPIResponse.error(.unauthorized, "Unauthorized", extraHeaders: challenge)
        }
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == "basic" else {
            return RAPIResponse.error(.unauthorized, "Unauthorized", extraHeaders: challenge)
        }
        guard let decoded = Data(base64Encoded: String(parts[1]).trimmingCharacters(in: .whitespaces)),
              let text = String(data: decoded, encoding: .utf8), let colon = text.firstIndex(of: ":") else {
            return RAPIResponse.error(.unauthorized, "Unauthorized", extraHeaders: challenge)
        }
        let users = (try? UsersFile.load(path: usersPath)) ?? UsersFile(text: "")
        guard let user = users.authenticate(user: String(text[..<colon]), password: String(text[text.index(after: colon)...])) else {
            return RAPIResponse.error(.unauthorized, "Unauthorized", extraHeaders: challenge)
        }
        if needsWrite && !user.canWrite {
            return RAPIResponse.error(.forbidden, "Forbidden")
        }
        return try await next(request, context)
    }
}
