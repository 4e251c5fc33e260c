import Foundation
import Hummingbird
import Logging
import HummingbirdTLS
import MoveCoordinator
import MoveTrust
import NIOSSL
import TestSupport

/// A third party that lies: an HTTPS proxy in front of an agent that rewrites JSON on the way
/// in or out. The coordinator trusts the proxy's certificate as if it were the cluster's.
final class TamperingProxy: @unchecked Sendable {
    typealias Rewrite = @Sendable (_ method: String, _ path: String, _ body: JSONValue) -> JSONValue

    let port: Int
    let certificatePath: String
    private let task: Task<Void, any Error>

    /// `requestRewrite` alters bodies sent to the agent, `responseRewrite` bodies coming back.
    init(target: ClusterEndpoint, folder: TemporaryDirectory, name: String,
         requestRewrite: @escaping Rewrite = { _, _, body in body }, responseRewrite: @escaping Rewrite = { _, _, body in body }) throws {
        port = freePort()
        let pem = folder.file("\(name)-proxy.pem")
        _ = try gntMove(arguments: ["x509", "create", "--secret", Repository.path("certs/test-secret"), "--dir", folder.file("\(name)-proxy-keys"), "--cn", "localhost"])
        let keyDir = try FileManager.default.contentsOfDirectory(atPath: folder.file("\(name)-proxy-keys")).first ?? ""
        let keyPath = folder.file("\(name)-proxy-keys/\(keyDir)/key"), certPath = folder.file("\(name)-proxy-keys/\(keyDir)/cert")
        try (String(contentsOfFile: keyPath, encoding: .utf8) + String(contentsOfFile: certPath, encoding: .utf8)).write(toFile: pem, atomically: true, encoding: .utf8)
        certificatePath = certPath
        let client = try RAPIClient(endpoint: target)
        let router = Router()
        router.on("**", method: .get) { request, _ in try await Self.forward(request, client: client, requestRewrite, responseRewrite) }
        router.on("**", method: .put) { request, _ in try await Self.forward(request, client: client, requestRewrite, responseRewrite) }
        router.on("**", method: .post) { request, _ in try await Self.forward(request, client: client, requestRewrite, responseRewrite) }
        router.on("**", method: .delete) { request, _ in try await Self.forward(request, client: client, requestRewrite, responseRewrite) }
        let tls = TLSConfiguration.makeServerConfiguration(certificateChain: try NIOSSLCertificate.fromPEMFile(pem).map { .certificate($0) },
                                                           privateKey: .privateKey(try NIOSSLPrivateKey(file: pem, format: .pem)))
        var logger = Logger(label: "tampering-proxy")
        logger.logLevel = .critical
        let app = Application(router: router, server: try .tls(.http1(), tlsConfiguration: tls),
                              configuration: .init(address: .hostname("127.0.0.1", port: port)), logger: logger)
        task = Task { try await app.runService() }
        usleep(300_000)
    }

    deinit { task.cancel() }

    static func forward(_ request: Request, client: RAPIClient, _ requestRewrite: Rewrite, _ responseRewrite: Rewrite) async throws -> Response {
        var request = request
        let buffer = try await request.collectBody(upTo: 16 << 20)
        let path = request.uri.path
        var body: JSONValue? = buffer.readableBytes > 0 ? try JSONValue(parsing: Array(buffer.readableBytesView)) : nil
        if let current = body { body = requestRewrite(request.method.rawValue, path, current) }
        var query: [String: String] = [:]
        for (key, value) in request.uri.queryParameters { query[String(key)] = String(value) }
        var headers = HTTPFields()
        headers[.contentType] = "application/json"
        do {
            let answer = try await client.request(.init(rawValue: request.method.rawValue), path, query: query, body: body)
            let rewritten = responseRewrite(request.method.rawValue, path, answer)
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: rewritten.serialized)))
        } catch let error as RAPIError {
            let status = HTTPResponse.Status(code: error.status == 0 ? 502 : error.status)
            let answer: JSONValue = .object(["code": .int(status.code), "message": .string(error.message), "explain": .string("")])
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: answer.serialized)))
        }
    }
}

/// Rewrites of signed material inside job results and log entries.
enum Tamper {
    /// Applies `change` to the message of every `remote-import` log entry in a job answer: a
    /// job's `oplog` (`/2/jobs/ID`) or the new `log_entries` of a `/2/jobs/ID/wait` answer.
    static func remoteImport(_ body: JSONValue, _ change: (inout [String: JSONValue]) -> Void) -> JSONValue {
        func rewrite(_ entries: [JSONValue]) -> [JSONValue] {
            entries.map { entry in
                guard case .array(var parts) = entry, parts.count == 4, parts[2].stringValue == "remote-import",
                      case .object(var message) = parts[3] else { return entry }
                change(&message)
                parts[3] = .object(message)
                return .array(parts)
            }
        }
        guard case .object(var job) = body else { return body }
        if case .array(let oplog)? = job["oplog"] {
            job["oplog"] = .array(oplog.map { op in op.arrayValue.map { .array(rewrite($0)) } ?? op })
        }
        if case .array(let entries)? = job["log_entries"] {
            job["log_entries"] = .array(rewrite(entries))
        }
        return .object(job)
    }

    static func field(_ body: JSONValue, _ key: String, _ value: (JSONValue) -> JSONValue) -> JSONValue {
        guard case .object(var fields) = body else { return body }
        fields[key] = value(fields[key] ?? .null)
        return .object(fields)
    }

    /// `object[key] = value`, for an object or null.
    static func set(_ object: JSONValue, _ key: String, _ value: JSONValue) -> JSONValue {
        var fields = object.objectValue ?? [:]
        fields[key] = value
        return .object(fields)
    }
}
