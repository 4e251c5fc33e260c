import Foundation
import Hummingbird
import MoveTrust
import NIOCore

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
        } catch let error as TrustError where error.kind != .keyStore {
            // Input that fails a trust check (a key name, a signature): the client's fault.
            return RAPIResponse.error(.badRequest, "\(error)")
        } catch is NIOTooManyBytesError {
            return RAPIResponse.error(.contentTooLarge, "Request body too large")
        } catch {
            return RAPIResponse.error(.internalServerError, "\(error)")
        }
    }
}
