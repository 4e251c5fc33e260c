/// Where the source must send one disk: the destination's signed `(host, port, magic)` (docs/protocol.md §4).
///
/// On the wire it is `[host, port, magic, HMAC-SHA1("index:host:port:magic"), salt]`. The disk
/// index is bound into the MAC but not sent: it is the tuple's position in the list.
public struct RemoteImportDiskInfo: Sendable, Equatable {
    public let host: String
    public let port: Int
    public let magic: String

    public init(host: String, port: Int, magic: String) {
        self.host = host
        self.port = port
        self.magic = magic
    }

    static func message(index: Int, host: String, port: String, magic: String) -> String {
        "\(index):\(host):\(port):\(magic)"
    }

    /// `ComputeRemoteImportDiskInfo`; one salt is shared by all disks of an import.
    public static func sign(index: Int, host: String, port: Int, magic: String,
                            secret: ClusterDomainSecret, salt: String) -> JSONValue {
        let mac = GanetiHMAC.sha1(key: secret, text: message(index: index, host: host, port: String(port), magic: magic), salt: salt)
        return .array([.string(host), .int(port), .string(magic), .string(mac), .string(salt)])
    }

    /// `CheckRemoteExportDiskInfo`: verifies the tuple for disk `index` and returns the
    /// destination, with the host normalised and the port resolved.
    public static func check(_ value: JSONValue, index: Int, secret: ClusterDomainSecret) throws(TrustError) -> RemoteImportDiskInfo {
        func fail(_ reason: String) -> TrustError { TrustError(.diskInfo, "Target info for disk \(index): \(reason)") }
        guard let items = value.arrayValue, items.count == 5 else {
            throw fail("Invalid data: expected [host, port, magic, hmac, salt], got \(value.serialized)")
        }
        let (host, port, magic) = (items[0], items[1], items[2])
        guard host.isTruthy, port.isTruthy, magic.isTruthy else {
            throw fail("Missing destination host, port or magic")
        }
        guard let digest = items[3].stringValue else { throw fail("Invalid data: the HMAC must be a string") }
        let salt: String?
        switch items[4] {
        case .string(let s): salt = s
        case let other where !other.isTruthy: salt = nil
        default: throw fail("Invalid data: the salt must be a string")
        }
        let text = message(index: index, host: PythonFormat.percentS(host), port: PythonFormat.percentS(port), magic: PythonFormat.percentS(magic))
        guard GanetiHMAC.verifySHA1(key: secret, text: text, digest: digest, salt: salt) else {
            throw fail("HMAC is wrong")
        }
        guard let hostText = host.stringValue else { throw fail("Invalid hostname '\(PythonFormat.percentS(host))'") }
        let destination: String
        if NetworkNames.isIPv4(hostText) || NetworkNames.isIPv6(hostText) {
            destination = hostText
        } else if let normalized = NetworkNames.normalizedHostname(hostText) {
            destination = normalized
        } else {
            throw fail("Invalid hostname '\(hostText.lowercased())'")
        }
        guard let portNumber = NetworkNames.port(port), portNumber > 0 else {
            throw fail("Invalid service name '\(PythonFormat.percentS(port))'")
        }
        guard let magicText = magic.stringValue, ImportExportMagic.isValid(magicText) else {
            throw fail("Invalid magic '\(PythonFormat.percentS(magic))'")
        }
        return RemoteImportDiskInfo(host: destination, port: portNumber, magic: magicText)
    }
}
