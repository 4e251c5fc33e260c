/// A check of relayed or local trust material failed. `message` is meant for an operator and
/// names what failed; `ecode` is the Ganeti error code a RAPI server reports for it.
public struct TrustError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: String, Sendable {
        case secret, certificate, signature, handshake, keyName, diskInfo, magic, spec, keyStore, name
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Ganeti reports every failed check of relayed material as `wrong_input`.
    public var ecode: String { kind == .keyStore || kind == .secret ? "environment_error" : "wrong_input" }
}
