import Foundation
import Hummingbird
import MoveTrust

/// JSON bodies as Ganeti's RAPI sends them, and its error body `{"code", "message", "explain"}`.
enum RAPIResponse {
    static func json(_ value: JSONValue, status: HTTPResponse.Status = .ok) -> Response {
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: value.serialized + "\n")))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, explain: String? = nil,
                      extraHeaders: HTTPFields = [:]) -> Response {
        var response = json(.object([
            "code": .int(status.code),
            "message": .string(message),
            "explain": .string(explain ?? Self.explanation(status)),
        ]), status: status)
        for field in extraHeaders { response.headers.append(field) }
        return response
    }

    static func explanation(_ status: HTTPResponse.Status) -> String {
        switch status.code {
        case 400: return "Bad request syntax or unsupported method"
        case 401: return "No permission -- see authorization schemes"
        case 403: return "Request forbidden -- authorization will not help"
        case 404: return "Nothing matches the given URI"
        case 413: return "Entity is too large"
        case 501: return "Server does not support this operation"
        default: return "Server got itself in trouble"
        }
    }
}

/// An error a handler throws to answer with an HTTP status.
struct RAPIHTTPError: Error {
    let status: HTTPResponse.Status
    let message: String
}
