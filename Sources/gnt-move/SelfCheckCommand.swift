import ArgumentParser
import Foundation
import MoveCoordinator

/// A quick end-to-end check of the trust primitives on this machine, with throw-away material:
/// a fresh secret and key, a signed certificate verified and then refused when tampered with.
struct SelfCheckCommand: ReportingCommand {
    static let configuration = CommandConfiguration(
        commandName: "selfcheck",
        abstract: "Check the trust primitives end to end with a fresh secret and key.")

    func execute() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("gnt-move-selfcheck-\(UUID().uuidString)").path
        defer { try? FileManager.default.removeItem(atPath: folder) }
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        var failures = 0
        func step(_ name: String, _ body: () throws -> Void) {
            do {
                try body()
                print("ok    \(name)")
            } catch {
                failures += 1
                print("FAIL  \(name): \(error)")
            }
        }
        func refused(_ what: String, _ body: () throws -> Void) throws {
            do { try body() } catch { return }
            throw CLIError("\(what) was accepted")
        }

        let secret = try ClusterDomainSecret.write(to: folder + "/cluster-domain-secret", force: false)
        let other = ClusterDomainSecret(key: ClusterDomainSecret.generateText())
        let store = X509KeyStore(directory: folder + "/crypto")
        let key = try store.create(secret: secret)
        print("key   \(key.name) (\(key.certificate.subject), sha256:\(key.certificate.sha256Fingerprint.prefix(16))…)")

        step("signed certificate verifies") { _ = try SignedCertificate.verify(key.signedCertificate, secret: secret) }
        step("certificate signed with another secret is refused") {
            try refused("foreign signature") { _ = try SignedCertificate.verify(key.signedCertificate, secret: other) }
        }
        step("certificate with one changed byte is refused") {
            var bytes = Array(key.signedCertificate.utf8)
            let middle = bytes.count / 2
            bytes[middle] = bytes[middle] == UInt8(ascii: "A") ? UInt8(ascii: "B") : UInt8(ascii: "A")
            try refused("tampered certificate") { _ = try SignedCertificate.verify(String(decoding: bytes, as: UTF8.self), secret: secret) }
        }
        step("signed key name verifies") { _ = try X509KeyName.check(key.signedName, secret: secret) }
        step("handshake verifies") { try ExportHandshake.check(ExportHandshake.make(secret: secret), secret: secret) }
        step("handshake from another domain is refused") {
            try refused("foreign handshake") { try ExportHandshake.check(ExportHandshake.make(secret: other), secret: secret) }
        }
        step("disk info verifies and a changed port is refused") {
            let salt = Salt.generate()
            let magic = ImportExportMagic.compute(base: ImportExportMagic.generateBase(), instanceName: "inst1", index: 0)
            let info = RemoteImportDiskInfo.sign(index: 0, host: "127.0.0.1", port: 40123, magic: magic, secret: secret, salt: salt)
            _ = try RemoteImportDiskInfo.check(info, index: 0, secret: secret)
            guard case .array(var items) = info else { throw CLIError("disk info is not an array") }
            items[1] = .int(40124)
            try refused("redirected port") { _ = try RemoteImportDiskInfo.check(.array(items), index: 0, secret: secret) }
        }
        step("key removed") {
            try store.remove(name: key.name)
            guard !store.contains(name: key.name) else { throw CLIError("key still present") }
        }
        guard failures == 0 else { throw CLIError("\(failures) self-check step(s) failed") }
        print("selfcheck passed")
    }
}
