/// A TLS failure, worded for an operator.
public struct TLSError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        /// Loading keys and certificates, or setting up the context.
        case configuration
        /// The handshake failed: wrong certificate, expired certificate, protocol mismatch.
        case handshake
        /// The peer closed the connection without a TLS close_notify (killed, crashed, reset).
        case truncated
        /// Any other failure while the connection was established.
        case transport
        /// A socket timeout expired.
        case timeout
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
