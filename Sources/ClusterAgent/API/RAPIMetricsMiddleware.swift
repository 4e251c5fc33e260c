import Hummingbird

/// Counts every request the router answers (`gnt_move_rapi_requests_total`) by the route it
/// matched — the router's template, `/2/instances/{name}`, so that instance names and job ids
/// never become label values — its method (a closed set) and the status the client got.
/// Runs outside the error and auth middlewares, so refusals (401, 403, 404) are counted too.
struct RAPIMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: AgentMetrics

    /// The methods counted by name; any other is `other`.
    static var methods: Set<String> { ["GET", "HEAD", "PUT", "POST", "DELETE"] }

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        var status = 500
        defer {
            // The router stores the matched template before any middleware of the route runs;
            // a request no route matched is `NotFound` there.
            let route = context.endpointPath.flatMap { $0 == "NotFound" ? nil : $0 } ?? "unmatched"
            let method = Self.methods.contains(request.method.rawValue) ? request.method.rawValue : "other"
            metrics.requestAnswered(route: route, method: method, status: status)
        }
        let response = try await next(request, context)
        status = response.status.code
        return response
    }
}
