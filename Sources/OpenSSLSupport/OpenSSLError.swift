import COpenSSL

/// An OpenSSL call failed. Carries the operation that failed and the reasons OpenSSL queued for it,
/// so an operator sees "loading certificate: no start line" rather than an error code.
public struct OpenSSLError: Error, CustomStringConvertible, Sendable, Equatable {
    public let operation: String
    public let reasons: [String]

    public init(operation: String, reasons: [String] = []) {
        self.operation = operation
        self.reasons = reasons
    }

    public var description: String {
        reasons.isEmpty ? operation : "\(operation): \(reasons.joined(separator: "; "))"
    }

    /// Drains this thread's OpenSSL error queue into an error for `operation`.
    public static func drain(_ operation: String) -> OpenSSLError {
        OpenSSLError(operation: operation, reasons: drainQueue())
    }

    /// Empties this thread's OpenSSL error queue and returns its reasons, oldest first.
    public static func drainQueue() -> [String] {
        var reasons: [String] = []
        while true {
            var data: UnsafePointer<CChar>?
            var flags: Int32 = 0
            let code = gnt_ERR_get_error_all(nil, nil, nil, &data, &flags)
            if code == 0 { break }
            var text = ERR_reason_error_string(code).map { String(cString: $0) } ?? "error \(code)"
            if let data, flags & ERR_TXT_STRING != 0 {
                let extra = String(cString: data)
                if !extra.isEmpty { text += " (\(extra))" }
            }
            if !reasons.contains(text) { reasons.append(text) }
        }
        return reasons
    }
}
