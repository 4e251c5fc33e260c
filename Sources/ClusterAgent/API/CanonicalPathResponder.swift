import Hummingbird

/// Runs before routing: rewrites the request to its canonical path (``RAPIPath``), so the router
/// and ``RAPIAuthMiddleware`` decide on the same spelling, and refuses with a 400 a path that has
/// no canonical form. The query string is kept as sent. No body is read here.
struct CanonicalPathResponder<Next: HTTPResponder>: HTTPResponder {
    typealias Context = Next.Context
    let next: Next

    func respond(to request: Request, context: Context) async throws -> Response {
        let uri = request.head.path ?? ""
        let query = uri.firstIndex(of: "?").map { uri[$0...] } ?? ""
        let rawPath = uri.firstIndex(of: "?").map { String(uri[..<$0]) } ?? uri
        let path: RAPIPath
        do {
            path = try RAPIPath(raw: rawPath)
        } catch {
            return RAPIResponse.error(.badRequest, "Invalid request path: \(error.reason)")
        }
        var head = request.head
        head.path = path.description + query
        return try await next.respond(to: Request(head: head, body: request.body), context: context)
    }
}
