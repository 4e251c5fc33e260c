import AsyncHTTPClient
import Foundation
import Logging
import MoveTrust
import NIOCore
import NIOHTTP1
import NIOSSL

/// How to reach one cluster's RAPI (a gnt-move agent or a real Ganeti cluster).
public struct ClusterEndpoint: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// The cluster's RAPI certificate (or its CA); required, as in `move-instance`.
    public var caFile: String
    public var username: String?
    public var password: String?
    /// Where the password came from (stored instead of the password itself).
    public var passwordFile: String?

    public init(host: String, port: Int = 5080, caFile: String, username: String? = nil, password: String? = nil) {
        self.host = host
        self.port = port
        self.caFile = caFile
        self.username = username
        self.password = password
    }

    /// Checks that the CA file can be read and reads `passwordFile` with Ganeti's one-line
    /// rule; `role` ("source", "destination") names the cluster in the error.
    public mutating func loadCredentials(role: String) throws {
        guard FileManager.default.isReadableFile(atPath: caFile) else {
            let why = FileManager.default.fileExists(atPath: caFile) ? "cannot be read" : "does not exist"
            throw CoordinatorError(reason: .badRequest, message: "the \(role) cluster's CA file \(caFile) \(why)")
        }
        guard let passwordFile else { return }
        do {
            password = try OneLineFile.read(passwordFile, what: "the \(role) cluster's password file")
        } catch {
            throw CoordinatorError(reason: .badRequest, message: error.message)
        }
    }
}

/// A cluster in a request: `{"host", "port", "ca_file", "username", "password_file"}`. The
/// password itself is never written; it is read from `password_file` (`loadCredentials`).
extension ClusterEndpoint: Codable {
    enum CodingKeys: String, CodingKey {
        case host, port, username
        case caFile = "ca_file", passwordFile = "password_file"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let host = try c.decode(String.self, forKey: .host)
        guard !host.isEmpty else { throw JSONCodingError(path: c.codingPath + [CodingKeys.host], problem: "is empty") }
        self.init(host: host, port: try c.decodeIfPresent(Int.self, forKey: .port) ?? 5080, caFile: try c.decode(String.self, forKey: .caFile),
                  username: try c.decodeIfPresent(String.self, forKey: .username))
        passwordFile = try c.decodeIfPresent(String.self, forKey: .passwordFile)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(host, forKey: .host)
        try c.encode(port, forKey: .port)
        try c.encode(caFile, forKey: .caFile)
        try c.encodeIfPresent(username, forKey: .username)
        try c.encodeIfPresent(passwordFile, forKey: .passwordFile)
    }
}

/// A RAPI failure: the HTTP status and Ganeti's `{"code", "message", "explain"}`.
public struct RAPIError: Error, CustomStringConvertible, Sendable {
    public let status: Int
    public let message: String
    /// Status 0: no answer came (the message says why).
    public var description: String { status == 0 ? message : "RAPI error \(status): \(message)" }

    public init(status: Int, message: String) {
        self.status = status
        self.message = message
    }

    /// A 4xx answer is the cluster's decision about this request (bad input, bad credentials, no
    /// such object), which asking again does not change; a timeout or throttling may pass.
    public var isRefusal: Bool { (400..<500).contains(status) && status != 408 && status != 429 }
}

/// A job that ended in error: Ganeti's encoded error `[class, [message, ecode]]`.
public struct RAPIJobError: Error, CustomStringConvertible, Sendable {
    public let jobId: Int64
    public let errorClass: String
    public let message: String
    public let ecode: String?
    public var description: String { "job \(jobId) failed: \(errorClass): \(message)\(ecode.map { " (\($0))" } ?? "")" }

    public init(jobId: Int64, errorClass: String, message: String, ecode: String?) {
        (self.jobId, self.errorClass, self.message, self.ecode) = (jobId, errorClass, message, ecode)
    }

    /// Ganeti refuses with `OpPrereqError` and an ecode (a name taken or unresolvable, bad input,
    /// no space, a missing bridge or OS…): trying again gives the same answer. Only
    /// `temp_insufficient_resources` may pass, and execution failures (`OpExecError`, a transfer
    /// that broke) are worth a fresh attempt.
    public var isRefusal: Bool {
        if ecode == "temp_insufficient_resources" { return false }
        return errorClass == "OpPrereqError" || Self.refusalCodes.contains(ecode ?? "")
    }

    static let refusalCodes: Set<String> = ["wrong_input", "already_exists", "unknown_entity", "insufficient_resources", "wrong_state",
                                            "resource_not_unique", "resolver_error", "environment_error"]
}

/// The RAPI calls of docs/protocol.md §6, over HTTPS with Basic auth. The server is trusted by its
/// certificate; host names are not checked, as in Ganeti's client.
public final class RAPIClient: Sendable {
    public let endpoint: ClusterEndpoint
    /// Trusts only the cluster's certificate; sent with each request, so that one client (and
    /// one connection pool) serves every cluster.
    private let tls: TLSConfiguration

    /// The coordinator's HTTP client for every cluster and every move; it lives as long as the
    /// process. A connection that fails to establish is tried again until the connect timeout,
    /// so that a cluster that is briefly unreachable (an agent restarting) does not fail a move.
    static let shared = makeClient(retryingConnections: true)

    /// For questions that want an answer now (`--preflight`): a refused connection is reported
    /// at once instead of after the connect timeout.
    static let probing = makeClient(retryingConnections: false)

    static func makeClient(retryingConnections: Bool) -> HTTPClient {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(20), read: .seconds(60))
        configuration.connectionPool.retryConnectionEstablishment = retryingConnections
        return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    private let client: HTTPClient

    /// `probing`: report a connection that cannot be established at once (see `probing`).
    public init(endpoint: ClusterEndpoint, probing: Bool = false) throws {
        self.endpoint = endpoint
        client = probing ? Self.probing : Self.shared
        var tls = TLSConfiguration.makeClientConfiguration()
        do {
            tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(endpoint.caFile))
        } catch {
            throw RAPIError(status: 0, message: "cannot read the CA file \(endpoint.caFile): \(error)")
        }
        tls.certificateVerification = .noHostnameVerification
        self.tls = tls
    }

    /// Sends one request; returns the parsed JSON body of a 200, throws ``RAPIError`` otherwise.
    public func request(_ method: HTTPMethod, _ path: String, query: [String: String] = [:], body: JSONValue? = nil) async throws -> JSONValue {
        var url = "https://\(endpoint.host.contains(":") ? "[\(endpoint.host)]" : endpoint.host):\(endpoint.port)\(path)"
        if !query.isEmpty {
            url += "?" + query.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed) ?? $0.value)" }.joined(separator: "&")
        }
        Logger(label: "gnt-move.rapi").debug("\(method.rawValue) \(url)")
        var request = HTTPClientRequest(url: url)
        request.tlsConfiguration = tls
        request.method = method
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: "gnt-move RAPI client")
        if let username = endpoint.username {
            let token = Data("\(username):\(endpoint.password ?? "")".utf8).base64EncodedString()
            request.headers.add(name: "Authorization", value: "Basic \(token)")
        }
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body.serializedBytes))
        }
        let response: HTTPClientResponse
        do {
            response = try await client.execute(request, timeout: .seconds(60))
        } catch {
            throw RAPIError(status: 0, message: "cannot reach \(endpoint.host):\(endpoint.port): \(TransportErrorText.describe(error, caFile: endpoint.caFile))")
        }
        let buffer = try await response.body.collect(upTo: 64 << 20)
        let bytes = Array(buffer.readableBytesView)
        let parsed = bytes.isEmpty ? JSONValue.null : ((try? JSONValue(parsing: bytes)) ?? .string(String(decoding: bytes, as: UTF8.self)))
        guard response.status == .ok else {
            let message = parsed["message"]?.stringValue ?? parsed.stringValue ?? response.status.reasonPhrase
            let explain = parsed["explain"]?.stringValue.map { ": \($0)" } ?? ""
            throw RAPIError(status: Int(response.status.code), message: message + explain)
        }
        return parsed
    }

    static func jobId(_ value: JSONValue) throws -> Int64 {
        if let id = value.integerValue { return id }
        if let text = value.stringValue, let id = Int64(text) { return id }
        throw RAPIError(status: 200, message: "expected a job id, got \(value.serialized)")
    }

    // MARK: Calls

    public func version() async throws -> Int64 { try await request(.GET, "/version").integerValue ?? 0 }
    public func info() async throws -> JSONValue { try await request(.GET, "/2/info") }
    public func features() async throws -> [String] { (try await request(.GET, "/2/features").arrayValue ?? []).compactMap(\.stringValue) }
    public func instance(_ name: String) async throws -> JSONValue { try await request(.GET, "/2/instances/\(name)") }

    public func instanceInfo(_ name: String) async throws -> Int64 {
        try Self.jobId(try await request(.GET, "/2/instances/\(name)/info", query: ["static": "1"]))
    }
    /// `destinationCluster` (a gnt-move extension, for gnt-move sources only) binds the signed
    /// instance spec to the cluster the move goes to.
    public func prepareExport(_ name: String, destinationCluster: String? = nil) async throws -> Int64 {
        var query = ["mode": "remote"]
        if let destinationCluster { query["gnt_move_destination_cluster"] = destinationCluster }
        return try Self.jobId(try await request(.PUT, "/2/instances/\(name)/prepare-export", query: query))
    }
    public func createInstance(_ body: JSONValue, dryRun: Bool = false) async throws -> Int64 {
        try Self.jobId(try await request(.POST, "/2/instances", query: dryRun ? ["dry-run": "1"] : [:], body: body))
    }
    public func exportInstance(_ name: String, body: JSONValue) async throws -> Int64 {
        try Self.jobId(try await request(.PUT, "/2/instances/\(name)/export", body: body))
    }
    public func startup(_ name: String) async throws -> Int64 { try Self.jobId(try await request(.PUT, "/2/instances/\(name)/startup")) }
    public func shutdown(_ name: String) async throws -> Int64 { try Self.jobId(try await request(.PUT, "/2/instances/\(name)/shutdown")) }
    public func deleteInstance(_ name: String) async throws -> Int64 { try Self.jobId(try await request(.DELETE, "/2/instances/\(name)")) }
    public func job(_ id: Int64) async throws -> JSONValue { try await request(.GET, "/2/jobs/\(id)") }
    public func cancelJob(_ id: Int64) async throws -> JSONValue { try await request(.DELETE, "/2/jobs/\(id)") }

    /// `GET /2/jobs/ID/wait` (a GET with a JSON body); nil or unchanged info means no change.
    public func waitForJobChange(_ id: Int64, previousInfo: JSONValue?, previousSerial: Int64?) async throws -> JSONValue {
        try await request(.GET, "/2/jobs/\(id)/wait", body: .object([
            "fields": .array([.string("status")]),
            "previous_job_info": previousInfo ?? .null,
            "previous_log_serial": previousSerial.map(JSONValue.int64) ?? .null,
        ]))
    }

    /// How long a cluster may be unreachable while a job is followed (an agent restarting, a
    /// cut): the job runs on the cluster, so asking again later loses nothing.
    public static let outageTolerance = 120.0

    /// Runs `call`, asking again while the cluster cannot be reached (status 0: refused, reset,
    /// closed, timed out), backing off from 0.25 s to 4 s, for up to ``outageTolerance``. Any
    /// answer from the cluster, an error included, is returned at once; nothing is retried past
    /// `deadline`.
    func riding<T: Sendable>(until deadline: Date? = nil, _ call: () async throws -> T) async throws -> T {
        let giveUp = min(Date().addingTimeInterval(Self.outageTolerance), deadline ?? .distantFuture)
        var delay = 0.25
        while true {
            do {
                return try await call()
            } catch let error as RAPIError where error.status == 0 {
                // A canceled follower (the other job of a pair ended first) stops here, quietly.
                try Task.checkCancellation()
                guard Date().addingTimeInterval(delay) < giveUp else { throw error }
                Logger(label: "gnt-move.rapi").info("\(endpoint.host):\(endpoint.port) unreachable (\(error.message)); asking again in \(delay) s")
                try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                delay = min(delay * 2, 4)
            }
        }
    }

    /// Follows a job to its end, handing each new log entry to `onLog`; returns `opresult[0]`
    /// on success and throws ``RAPIJobError`` otherwise.
    public func pollJob(_ id: Int64, deadline: Date? = nil, onLog: (JSONValue) async throws -> Void = { _ in }) async throws -> JSONValue {
        var info: JSONValue? = nil
        var serial: Int64? = nil
        while true {
            try Task.checkCancellation()
            if let deadline, Date() > deadline {
                throw CoordinatorError(reason: .timeout, message: "gave up waiting for job \(id) on \(endpoint.host):\(endpoint.port) (--timeout)")
            }
            let (previousInfo, previousSerial) = (info, serial)
            let change = try await riding(until: deadline) { try await waitForJobChange(id, previousInfo: previousInfo, previousSerial: previousSerial) }
            let entries = change["log_entries"]?.arrayValue ?? []
            for entry in entries {
                if let s = entry.arrayValue?.first?.integerValue { serial = max(serial ?? s, s) }
                try await onLog(entry)
            }
            if let newInfo = change["job_info"] { info = newInfo }
            let status = info?.arrayValue?.first?.stringValue ?? ""
            if entries.isEmpty && ["success", "error", "canceling", "canceled"].contains(status) { break }
        }
        let job = try await riding(until: deadline) { try await self.job(id) }
        let result = job["opresult"]?.arrayValue?.first ?? .null
        guard job["status"]?.stringValue == "success" else {
            let parts = result.arrayValue ?? []
            let details = parts.count > 1 ? (parts[1].arrayValue ?? []) : []
            throw RAPIJobError(jobId: id, errorClass: parts.first?.stringValue ?? (job["status"]?.stringValue ?? "error"),
                               message: details.first.map(PythonFormat.percentS) ?? result.serialized,
                               ecode: details.count > 1 ? details[1].stringValue : nil)
        }
        return result
    }
}
