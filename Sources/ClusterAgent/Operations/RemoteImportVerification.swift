import BlockStream
import Foundation
import MoveTrust
import OpenSSLSupport

/// Everything a third party relays for a remote import is checked before anything is created:
/// the handshake, the source certificate, and the signed instance spec, from which the instance
/// is built. The request may differ from the signed spec only by overrides it declares and this
/// cluster's policy allows.
struct RemoteImportPlan {
    /// What will be created.
    let spec: InstanceSpec
    let sourceCertificate: X509Certificate
    let sourceName: String
    /// Whether `spec` comes from a verified signed spec (false: a Ganeti source, policy allowing).
    let signed: Bool
    /// The declared overrides that were applied, one line each.
    let overrides: [String]
    /// The stream's compression, as the request names it.
    let compression: CompressionMethod
    /// A warm move (`gnt_move_warm`): the import daemons take pre-copy passes, then a final one.
    var warm = false
}

extension ClusterAgentService {
    /// The tag a gnt-move coordinator sets on the instances its moves create, so that cleanup
    /// can prove a destination instance is the move's own before removing it.
    static let moveTagPrefix = "gnt-move:move:"

    /// With `continuing`, the instance must be the one an interrupted import of the same move kept,
    /// instead of a name that is free.
    func verifyRemoteImport(body: JSONValue, name: String, continuing: Bool = false) async throws -> RemoteImportPlan {
        try ExportHandshake.check(body["source_handshake"] ?? .null, secret: secret)
        guard let signedCertificate = body["source_x509_ca"]?.stringValue else { throw AgentError.wrongInput("Missing source_x509_ca") }
        let sourceCertificate = try SignedCertificate.verify(signedCertificate, secret: secret).certificate
        guard let sourceName = body["source_instance_name"]?.stringValue, !sourceName.isEmpty else {
            throw AgentError.wrongInput("Missing source instance name")
        }
        try SpecValidation.name(sourceName, .hostname, "source_instance_name")
        try SpecValidation.name(name, .hostname, "instance name")
        let compression = try SpecValidation.compression(body["compress"])
        let requested = try parseSpec(body: body, name: name)
        guard let signedSpec = body["gnt_move_signed_spec"], signedSpec != .null else {
            if config.requireSignedSpec == true {
                throw AgentError.wrongInput("gnt_move_signed_spec: this cluster requires a signed instance spec for every remote import (requireSignedSpec), and the request carries none")
            }
            try await (continuing ? checkContinuation(requested) : checkPlacement(requested, body: body))
            return RemoteImportPlan(spec: requested, sourceCertificate: sourceCertificate, sourceName: sourceName, signed: false, overrides: [],
                                    compression: compression, warm: try Self.warmTransfer(body, spec: requested))
        }
        let verified = try SignedInstanceSpec.verify(signedSpec, secret: secret, expecting: .init(
            destinationCluster: config.clusterName, certificateSHA256: sourceCertificate.sha256Fingerprint))
        guard verified.spec.name == sourceName else {
            throw AgentError.wrongInput("source_instance_name: the signed spec describes instance '\(verified.spec.name)', not '\(sourceName)'")
        }
        let overrides = try SpecOverrides(json: body["gnt_move_overrides"])
        let allowed = config.effectiveOverridePolicy
        for group in overrides.groups where !allowed.contains(group.rawValue) {
            throw AgentError.wrongInput("gnt_move_overrides.\(group.rawValue): this cluster's override policy does not allow changing \(group.rawValue) (allowed: \(allowed.joined(separator: ", ")); overridePolicy in agent.json)")
        }
        if name != verified.spec.name, overrides.name != name {
            throw AgentError.wrongInput("name: the request creates '\(name)' but the signed spec names '\(verified.spec.name)' and no name override is declared")
        }
        var expected = try overrides.apply(to: verified.spec)
        expected.name = name
        try Self.compare(requested: requested, expected: expected)
        // The instance is built from the signed spec; only the move's identity tag comes from the request.
        expected.tags = expected.tags.filter { !$0.hasPrefix(Self.moveTagPrefix) } + requested.tags.filter { $0.hasPrefix(Self.moveTagPrefix) }
        try SpecValidation.check(expected)
        try await (continuing ? checkContinuation(expected) : checkPlacement(expected, body: body))
        return RemoteImportPlan(spec: expected, sourceCertificate: sourceCertificate, sourceName: sourceName, signed: true,
                                overrides: overrides.descriptions, compression: compression, warm: try Self.warmTransfer(body, spec: expected))
    }

    /// An import may continue only into an instance that an interrupted continuable import of the
    /// same move kept (its move tag), with the same disks.
    func checkContinuation(_ spec: InstanceSpec) async throws {
        guard let record = try database.instance(spec.name) else {
            throw AgentError.unknown("gnt_move_continue: instance '\(spec.name)' does not exist; there is no interrupted import to continue")
        }
        guard record.lifecycle == InstanceLifecycle.importInterrupted.rawValue else {
            throw AgentError.wrongState("gnt_move_continue: instance '\(spec.name)' is \(record.lifecycle), not an interrupted import")
        }
        let tag = spec.tags.first { $0.hasPrefix(Self.moveTagPrefix) }
        guard let tag, record.spec.tags.contains(tag) else {
            throw AgentError.wrongInput("gnt_move_continue: instance '\(spec.name)' was imported by another move (its move tag differs)")
        }
        guard record.spec.disks.map(\.size) == spec.disks.map(\.size), record.diskPaths.count == spec.disks.count else {
            throw AgentError.wrongInput("gnt_move_continue: instance '\(spec.name)' has disks of \(record.spec.disks.map(\.size)) MiB, the request \(spec.disks.map(\.size)) MiB")
        }
    }

    /// Whether the request asks for a warm move (`gnt_move_warm`), refused for an instance whose
    /// disks travel through its OS's import/export scripts: passes compare disk chunks, which a
    /// script's stream does not have.
    static func warmTransfer(_ body: JSONValue, spec: InstanceSpec) throws -> Bool {
        guard let value = body["gnt_move_warm"], value != .null else { return false }
        guard let warm = value.boolValue else { throw AgentError.wrongInput("gnt_move_warm: must be true or false") }
        if warm, let os = spec.os {
            throw AgentError.wrongInput("gnt_move_warm: instance \(spec.name) has OS '\(os)', whose import and export scripts carry its disks; a warm move compares disk chunks and needs direct disk access (move it without --warm)")
        }
        return warm
    }

    /// Refuses the first field where the request contradicts the signed spec (with the declared
    /// overrides applied), naming it.
    static func compare(requested: InstanceSpec, expected: InstanceSpec) throws {
        func refuse(_ field: String, _ signed: String, _ asked: String) -> AgentError {
            AgentError.wrongInput("\(field): the request asks for \(asked.prefix(200)) but the signed instance spec says \(signed.prefix(200)), and no override of it is declared")
        }
        func text(_ value: JSONValue?) -> String { value?.serialized ?? "null" }
        let wanted = expected.json, asked = requested.json
        for field in ["disk_template", "os", "hypervisor"] where wanted[field] != asked[field] {
            throw refuse(field, text(wanted[field]), text(asked[field]))
        }
        guard expected.disks.count == requested.disks.count else { throw refuse("disks", "\(expected.disks.count) disk(s)", "\(requested.disks.count)") }
        for (index, (want, ask)) in zip(expected.disks, requested.disks).enumerated() {
            if want.size != ask.size { throw refuse("disks[\(index)].size", "\(want.size) MiB", "\(ask.size) MiB") }
            if want.mode != ask.mode { throw refuse("disks[\(index)].mode", want.mode, ask.mode) }
            if want.name != ask.name { throw refuse("disks[\(index)].name", want.name ?? "None", ask.name ?? "None") }
        }
        guard expected.nics.count == requested.nics.count else { throw refuse("nics", "\(expected.nics.count) NIC(s)", "\(requested.nics.count)") }
        for (index, (want, ask)) in zip(expected.nics, requested.nics).enumerated() {
            for (field, (w, a)) in zip(InstanceSpec.NIC.fieldNames, zip(want.fieldValues, ask.fieldValues)) where w != a {
                throw refuse("nics[\(index)].\(field)", w ?? "None", a ?? "None")
            }
        }
        for (group, want, ask) in [("beparams", expected.beparams, requested.beparams), ("hvparams", expected.hvparams, requested.hvparams),
                                   ("osparams", expected.osparams, requested.osparams)] {
            for key in Set(want.keys).union(ask.keys).sorted() where want[key] != ask[key] {
                throw refuse("\(group).\(key)", text(want[key]), text(ask[key]))
            }
        }
        let wantTags = expected.tags.filter { !$0.hasPrefix(moveTagPrefix) }, askTags = requested.tags.filter { !$0.hasPrefix(moveTagPrefix) }
        if wantTags != askTags { throw refuse("tags", text(.array(wantTags.map(JSONValue.string))), text(.array(askTags.map(JSONValue.string)))) }
    }
}
