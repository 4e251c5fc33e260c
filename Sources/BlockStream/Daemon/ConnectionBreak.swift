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
}
