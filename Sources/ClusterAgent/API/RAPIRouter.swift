import Foundation
import Hummingbird
import MoveTrust
import NIOCore

/// The RAPI subset a move needs (docs/protocol.md §6), with Ganeti's paths, bodies and results.
public enum RAPIRouter {
    /// The largest body each route reads: specs and export targets are a few KiB.
    static let largeBody = 1 << 20
    static let smallBody = 64 << 10

    /// The router behind ``CanonicalPathResponder``: what the server answers with.
    static func responder(service: ClusterAgentService) -> some HTTPResponder<BasicRequestContext> {
        CanonicalPathResponder(next: build(service: service).buildResponder())
    }

    public static func build(service: ClusterAgentService) -> Router<BasicRequestContext> {
        let router = Router(context: BasicRequestContext.self)
        router.add(middleware: RAPIRequestLogMiddleware())
        router.add(middleware: RAPIMetricsMiddleware(metrics: service.metrics))
        router.add(middleware: RAPIErrorMiddleware())
        router.add(middleware: RAPIAuthMiddleware(usersPath: service.paths.users))

        router.get("version") { _, _ in RAPIResponse.json(.int(2)) }
        router.get("2/info") { _, _ in RAPIResponse.json(service.clusterInfo) }
        router.get("2/features") { _, _ in RAPIResponse.json(.array(ClusterAgentService.features.map(JSONValue.string))) }
        // Ganeti's OS list: each OS in the search path, with its variants (`name+variant`).
        router.get("2/os") { _, _ in RAPIResponse.json(.array(OSScripts(searchPath: service.config.osSearchPath).available().map(JSONValue.string))) }
        addMetricsRoute(router, service: service)

        router.get("2/instances") { request, _ in
            let records = try service.database.instances()
            if request.uri.queryParameters.get("bulk").flatMap(Int.init) == 1 {
                let running = try await service.runningStates(records)
                return RAPIResponse.json(.array(zip(records, running).map { InstanceViews.fields($0, node: service.config.nodeName, running: $1) }))
            }
            return RAPIResponse.json(.array(records.map { .object(["id": .string($0.name), "uri": .string("/2/instances/\($0.name)")]) }))
        }
        router.get("2/instances/:name") { _, context in
            let record = try service.instance(try context.parameters.require("name"))
            return RAPIResponse.json(InstanceViews.fields(record, node: service.config.nodeName, running: try await service.isRunning(record)))
        }
        router.get("2/instances/:name/info") { _, context in
            jobId(try service.submitQueryData(try context.parameters.require("name")))
        }
        router.put("2/instances/:name/prepare-export") { request, context in
            guard let mode = request.uri.queryParameters.get("mode") else { throw RAPIHTTPError(status: .badRequest, message: "Missing 'mode' parameter") }
            return jobId(try service.submitPrepareExport(try context.parameters.require("name"), mode: mode,
                                                         destinationCluster: request.uri.queryParameters.get("gnt_move_destination_cluster")))
        }
        router.post("2/instances") { request, _ in
            var request = request
            guard let body = try await jsonBody(&request, required: true, limit: largeBody) else { throw RAPIHTTPError(status: .badRequest, message: "Missing request body") }
            let dryRun = (request.uri.queryParameters.get("dry-run") ?? request.uri.queryParameters.get("dry_run")).flatMap(Int.init) == 1
            return jobId(try service.submitCreate(body: body, dryRun: dryRun))
        }
        router.put("2/instances/:name/export") { request, context in
            var request = request
            guard let body = try await jsonBody(&request, required: true, limit: largeBody) else { throw RAPIHTTPError(status: .badRequest, message: "Missing request body") }
            return jobId(try service.submitExport(try context.parameters.require("name"), body: body))
        }
        // gnt-move extension: drop a prepared key that will not be used (after a preflight).
        router.put("2/gnt-move/discard-key") { request, _ in
            var request = request
            guard let body = try await jsonBody(&request, required: true, limit: smallBody) else { throw RAPIHTTPError(status: .badRequest, message: "Missing request body") }
            let name = try X509KeyName.check(body["x509_key_name"] ?? .null, secret: service.secret)
            try service.keyStore.remove(name: name)
            return RAPIResponse.json(.bool(true))
        }
        router.put("2/instances/:name/startup") { _, context in jobId(try service.submitStartup(try context.parameters.require("name"))) }
        router.put("2/instances/:name/shutdown") { _, context in jobId(try service.submitShutdown(try context.parameters.require("name"))) }
        router.delete("2/instances/:name") { _, context in jobId(try service.submitRemove(try context.parameters.require("name"))) }

        router.get("2/jobs") { _, _ in
            RAPIResponse.json(.array(try service.database.jobIds().map { .object(["id": .int64($0), "uri": .string("/2/jobs/\($0)")]) }))
        }
        router.get("2/jobs/:id") { _, context in
            RAPIResponse.json(JobViews.status(try job(service, context)))
        }
        router.get("2/jobs/:id/wait") { request, context in
            var request = request
            let body = try await jsonBody(&request, required: false, limit: smallBody)
            return RAPIResponse.json(try await JobViews.wait(service: service, id: try job(service, context).id, body: body))
        }
        router.delete("2/jobs/:id") { _, context in RAPIResponse.json(try service.jobs.cancel(try job(service, context).id)) }
        router.put("2/jobs/:id/cancel") { _, context in RAPIResponse.json(try service.jobs.cancel(try job(service, context).id)) }
        return router
    }

    static func jobId(_ id: Int64) -> Response { RAPIResponse.json(.int64(id)) }

    static func job(_ service: ClusterAgentService, _ context: BasicRequestContext) throws -> JobRecord {
        let text = try context.parameters.require("id")
        guard let id = Int64(text), let job = try service.database.job(id) else {
            throw RAPIHTTPError(status: .notFound, message: "Job \(text) not found")
        }
        return job
    }

    /// Reads a JSON body of at most `limit` bytes; a larger one is a 413 (refused on its
    /// Content-Length before it is read), a truncated or malformed one a 400 that says why.
    static func jsonBody(_ request: inout Request, required: Bool, limit: Int) async throws -> JSONValue? {
        let tooLarge = RAPIHTTPError(status: .contentTooLarge, message: "Request body larger than \(limit) bytes")
        if let declared = request.headers[.contentLength], Int(declared).map({ $0 > limit }) ?? true { throw tooLarge }
        let buffer: ByteBuffer
        do {
            buffer = try await request.collectBody(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw tooLarge
        }
        if buffer.readableBytes == 0 {
            if required { throw RAPIHTTPError(status: .badRequest, message: "Missing request body") }
            return nil
        }
        do {
            return try JSONValue(parsing: Array(buffer.readableBytesView))
        } catch {
            throw RAPIHTTPError(status: .badRequest, message: "Unable to parse JSON data: \(error)")
        }
    }
}
