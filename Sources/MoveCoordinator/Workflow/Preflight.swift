import Foundation
import MoveTrust

/// `--preflight`: everything a move needs, checked before anything is shut down or created.
extension Coordinator {
    public struct Check: Sendable {
        public let name: String
        public let passed: Bool
        public let detail: String
        /// Passed, but something the operator should look at.
        public var warning = false
    }

    /// What `--preflight` found: the plan (nil when the source's instance could not be read)
    /// and every check, in order.
    public struct PreflightReport: Sendable {
        public let instance: String
        public let plan: Plan?
        public let checks: [Check]
        public var passed: Bool { checks.allSatisfy(\.passed) }

        /// The `preflight` event of one check (`schemas/run-event.schema.json`).
        public func json(_ check: Check) -> JSONValue {
            .object(["event": .string("preflight"), "instance": .string(instance), "check": .string(check.name),
                     "passed": .bool(check.passed), "warning": .bool(check.warning), "detail": .string(check.detail)])
        }

        /// The plan's event, then one per check.
        public var events: [JSONValue] { (plan.map { [$0.json] } ?? []) + checks.map { json($0) } }
    }

    public func preflight(_ given: MoveRequest) async -> PreflightReport {
        var plan: Plan?
        let checks = await preflightChecks(given) { plan = $0 }
        return PreflightReport(instance: given.instance, plan: plan, checks: checks)
    }

    func preflightChecks(_ given: MoveRequest, plan setPlan: (Plan) -> Void) async -> [Check] {
        var checks: [Check] = []
        var request = given
        func check(_ name: String, _ body: () async throws -> String) async -> Bool {
            do {
                checks.append(Check(name: name, passed: true, detail: try await body()))
                return true
            } catch {
                checks.append(Check(name: name, passed: false, detail: "\(error)"))
                return false
            }
        }
        guard await check("request", {
            try given.validate()
            return "valid"
        }) else { return checks }
        guard await check("CA and password files", {
            request = try given.loadingCredentials()
            return "readable"
        }) else { return checks }
        let source: RAPIClient, destination: RAPIClient
        do {
            (source, destination) = (try RAPIClient(endpoint: request.source, probing: true), try RAPIClient(endpoint: request.destination, probing: true))
        } catch {
            return checks + [Check(name: "CA files", passed: false, detail: "\(error)")]
        }
        for (name, client) in [("source", source), ("destination", destination)] {
            guard await check("\(name) reachable", {
                do {
                    return "RAPI version \(try await client.version())"
                } catch let error as RAPIError where error.status == 401 || error.status == 403 {
                    return "answers (it refused the credentials, see below)"
                }
            }) else { continue }
            _ = await check("\(name) credentials") {
                do {
                    _ = try await client.waitForJobChange(0, previousInfo: nil, previousSerial: nil)
                } catch let error as RAPIError where error.status == 401 || error.status == 403 {
                    throw CoordinatorError(reason: .credentials, message: "refused (\(error.status)): check the user and its write access")
                } catch is RAPIError {}
                return "accepted for writing"
            }
        }
        guard checks.allSatisfy(\.passed) else { return checks }
        guard await check("instance on the source", {
            let info = try await source.instance(request.instance)
            return "\(request.instance) is \(info["status"]?.stringValue ?? "present")"
        }) else { return checks }
        var features: [String] = []
        guard await check("destination features", {
            features = try await destination.features()
            guard features.contains("instance-create-reqv1") else { throw CoordinatorError(reason: .incompatibleDestination, message: "no instance-create-reqv1") }
            return features.joined(separator: ", ")
        }) else { return checks }
        // The plan, from the source's instance data and the destination's info: read-only calls.
        var spec: JSONValue = .null
        var destinationInfo: JSONValue = .null
        var sourceFeatures: [String] = []
        guard await check("instance data", {
            let info = try await source.pollJob(try await source.instanceInfo(request.instance))
            guard let found = info[request.instance], found != .null else {
                throw CoordinatorError(reason: .rapi, message: "the source returned no data for \(request.instance)")
            }
            spec = found
            destinationInfo = try await destination.info()
            sourceFeatures = try await source.features()
            return "read from the source (\(spec["disks"]?.arrayValue?.count ?? 0) disk(s), \(spec["nics"]?.arrayValue?.count ?? 0) NIC(s))"
        }) else { return checks }
        setPlan(Plan(request: request, spec: spec, sourceFeatures: sourceFeatures, destinationFeatures: features, destinationInfo: destinationInfo))
        if request.warm {
            guard await check("warm move", {
                try MoveSteps.checkWarm(source: sourceFeatures, destination: features)
                return "both clusters take pre-copy passes (\(MoveSteps.warmFeature)); up to \(request.warmPasses) while the source runs"
            }) else { return checks }
        }
        guard await check("compression", {
            try MoveSteps.checkCompression(request.compress.rawValue, source: try await source.info(), destination: try await destination.info())
            return "both clusters offer \(request.compress)"
        }) else { return checks }
        checks.append(await dataAddressCheck(source: request.source, destination: destination))
        checks += await destinationChecks(request, spec: spec, destination: destination, destinationInfo: destinationInfo, features: features)
        /// The remote-import request, checked by the destination without creating anything.
        func dryRun(_ prepared: JSONValue) async throws {
            var record = MoveRecord(id: "preflight", instance: request.instance, request: request.json, state: .sourcePrepared,
                                    facts: MoveFacts(), error: nil, reason: nil, created: 0, updated: 0)
            record.facts.spec = spec
            record.facts.prepared = prepared
            if request.iallocator == nil && request.primaryNode == nil {
                record.facts.iallocator = destinationInfo["default_iallocator"]
            }
            let steps = MoveSteps(coordinator: self, request: request, source: source, destination: destination)
            _ = try await destination.pollJob(try await destination.createInstance(steps.createBody(record, features: features), dryRun: true))
        }
        // The shared secret, the name and the space: the destination checks a real request in
        // dry-run mode, with a handshake and certificate the source made for it.
        let accepted = await check("secret, name and space (destination dry run)") {
            let prepared = try await source.pollJob(try await source.prepareExport(request.instance))
            do {
                try await dryRun(prepared)
            } catch {
                await discardKey(prepared, on: source)
                throw error
            }
            await discardKey(prepared, on: source)
            return "the destination accepts \(request.targetName): same cluster domain secret, name free, enough space"
        }
        // The destination's own resolver decides: a Ganeti dry run resolves the source's name, so
        // a name that resolves there but not here is only worth a look.
        if accepted, let index = checks.firstIndex(where: { $0.name == Self.resolvableCheckName && !$0.passed }) {
            checks[index] = Check(name: Self.resolvableCheckName, passed: true,
                                  detail: "\(request.instance) does not resolve here, but the destination resolved it in its dry run", warning: true)
        }
        return checks
    }

    /// Whether the source can reach the address the destination's import daemons publish: a
    /// loopback address is fine for a source on the same host, and a warning otherwise (the
    /// transfer would fail after the destination was created).
    func dataAddressCheck(source: ClusterEndpoint, destination: RAPIClient) async -> Check {
        let name = "data address"
        let published: String?
        do {
            published = try await destination.info()["gnt_move_data_address"]?.stringValue
        } catch {
            return Check(name: name, passed: false, detail: "\(error)")
        }
        guard let published else { return Check(name: name, passed: true, detail: "chosen per node by the destination") }
        guard NetworkNames.isLoopback(published) else {
            return Check(name: name, passed: true, detail: "the destination's import daemons listen on \(published)")
        }
        let sourceAddresses = HostIdentity.addresses(of: source.host)
        if !sourceAddresses.isEmpty, sourceAddresses.allSatisfy(NetworkNames.isLoopback) {
            return Check(name: name, passed: true, detail: "\(published) (loopback; the source is on the same host)")
        }
        return Check(name: name, passed: true,
                     detail: "the destination publishes \(published), a loopback address, but the source \(source.host) is another host and "
                         + "cannot connect to it (set the destination agent's dataAddress in agent.json, or --data-address at agent init)",
                     warning: true)
    }

    /// Removes the key a preflight made on a gnt-move source (a Ganeti source keeps it until it expires).
    func discardKey(_ prepared: JSONValue, on source: RAPIClient) async {
        guard (try? await source.features())?.contains("gnt-move-stream-v1") == true, let key = prepared["x509_key_name"] else { return }
        _ = try? await source.request(.PUT, "/2/gnt-move/discard-key", body: .object(["x509_key_name": key]))
    }
}
