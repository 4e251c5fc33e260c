import AsyncHTTPClient
import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Why a cluster could not be reached, in an operator's terms: "its certificate is not the one
/// in the CA file", "connection refused". Never a library's type name or source path (BoringSSL
/// errors carry `at …/handshake.cc:320`).
enum TransportErrorText {
    static func describe(_ error: any Error, caFile: String) -> String {
        switch error {
        case let error as NIOSSLError:
            if case .handshakeFailed(let inner) = error { return describe(inner, caFile: caFile) }
            if case .uncleanShutdown = error { return "the cluster closed the TLS connection without finishing it" }
            return "TLS failed: \(error)"
        case let error as BoringSSLError:
            if case .sslError(let errors) = error { return tlsReason(errors.map(\.description), caFile: caFile) }
            return "TLS failed: \(error)"
        case let error as NIOConnectionError:
            if let failure = error.connectionErrors.first { return describe(failure.error, caFile: caFile) }
            if error.dnsAError != nil || error.dnsAAAAError != nil { return "cannot resolve \(error.host)" }
            return "cannot connect"
        case let error as IOError:
            return String(cString: strerror(error.errnoCode)).lowercased()
        case let error as HTTPClientError:
            switch error {
            case .connectTimeout: return "connecting timed out"
            case .tlsHandshakeTimeout: return "the TLS handshake timed out"
            case .readTimeout, .deadlineExceeded: return "no answer in time"
            case .remoteConnectionClosed: return "the cluster closed the connection"
            default: return "\(error)"
            }
        case let error as ChannelError:
            if case .connectTimeout = error { return "connecting timed out" }
            return "\(error)"
        default:
            return "\(error)"
        }
    }

    /// BoringSSL's `error:1000007d:SSL routines:OPENSSL_internal:CERTIFICATE_VERIFY_FAILED at
    /// FILE:LINE`, reduced to its reason and worded.
    static func tlsReason(_ descriptions: [String], caFile: String) -> String {
        let reasons = descriptions.map { text -> String in
            let head = text.components(separatedBy: " at ").first ?? text
            return head.split(separator: ":").last.map(String.init) ?? head
        }
        switch reasons.first ?? "" {
        case "CERTIFICATE_VERIFY_FAILED":
            return "its TLS certificate is not the one in the CA file \(caFile) (certificate verification failed)"
        case "TLSV1_ALERT_CERTIFICATE_REQUIRED":
            return "it asks for a client certificate, which a RAPI client does not have (TLS alert: certificate required)"
        case "WRONG_VERSION_NUMBER", "HTTP_REQUEST":
            return "it does not speak TLS on this port (is it the RAPI port?)"
        case let reason:
            return "the TLS handshake failed: \(reason.lowercased().replacingOccurrences(of: "_", with: " "))"
        }
    }
}
