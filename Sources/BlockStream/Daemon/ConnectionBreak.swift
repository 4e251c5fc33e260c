import OpenSSLSupport

/// Whether a failure broke only the connection (a reset, a cut, a peer that vanished, a socket
/// timeout) and a gnt-move/1 transfer may continue on a new one from the importer's journal.
/// A verdict — a chunk that did not verify, a wrong magic, a full destination, an ERROR from the
/// peer — ends the transfer: reconnecting would only meet it again.
enum ConnectionBreak {
    static func isBreak(_ error: any Error) -> Bool {
        switch error {
        case let error as TLSError:
            switch error.kind {
            case .truncated, .transport, .timeout: return true
            case .configuration, .handshake: return false
            }
        case let error as BlockStreamError:
            return error.kind == .truncated
        default:
            return false
        }
    }

    /// Whether a daemon that ended with `error` ended on a verdict about the data or the request,
    /// rather than because the peer went away, never came, or the link broke: a transfer that
    /// ended on a verdict meets it again if it is continued.
    static func isVerdict(_ error: any Error) -> Bool {
        if isBreak(error) { return false }
        if let error = error as? BlockStreamError, error.kind == .timeout || error.kind == .connect { return false }
        return true
    }
}
