import Foundation
import NIOCore

/// What keeps slow or idle clients from starving the RAPI server: a deadline for the TLS
/// handshake, an idle timeout between requests, a deadline for the rest of a body the server
/// did not need (``UnreadBodyLimiter``), and a cap on open connections (beyond it the server
/// stops accepting; new connections wait in the listen backlog).
///
/// The idle timeout is longer than HTTP clients' own pool timeouts (AsyncHTTPClient: 60 s), so a
/// client normally closes a kept-alive connection first and never writes into one being closed.
public struct ServerLimits: Sendable, Equatable {
    public var handshakeTimeout: Double
    public var idleTimeout: Double
    public var unreadBodyTimeout: Double
    public var maxConnections: Int

    public init(handshakeTimeout: Double = 10, idleTimeout: Double = 120, unreadBodyTimeout: Double = 10, maxConnections: Int = 256) {
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.unreadBodyTimeout = unreadBodyTimeout
        self.maxConnections = maxConnections
    }

    /// The defaults, with `GNT_MOVE_AGENT_HANDSHAKE_TIMEOUT`, `GNT_MOVE_AGENT_IDLE_TIMEOUT`,
    /// `GNT_MOVE_AGENT_UNREAD_BODY_TIMEOUT` (seconds) and `GNT_MOVE_AGENT_MAX_CONNECTIONS`
    /// overriding them when set to a positive number.
    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) -> ServerLimits {
        var limits = ServerLimits()
        if let value = environment["GNT_MOVE_AGENT_HANDSHAKE_TIMEOUT"].flatMap(Double.init), value > 0, value.isFinite {
            limits.handshakeTimeout = value
        }
        if let value = environment["GNT_MOVE_AGENT_IDLE_TIMEOUT"].flatMap(Double.init), value > 0, value.isFinite {
            limits.idleTimeout = value
        }
        if let value = environment["GNT_MOVE_AGENT_UNREAD_BODY_TIMEOUT"].flatMap(Double.init), value > 0, value.isFinite {
            limits.unreadBodyTimeout = value
        }
        if let value = environment["GNT_MOVE_AGENT_MAX_CONNECTIONS"].flatMap(Int.init), value > 0 {
            limits.maxConnections = value
        }
        return limits
    }

    /// Seconds as NIO's nanosecond amount, clamped to [1 ms, 1 day].
    static func amount(_ seconds: Double) -> TimeAmount {
        .nanoseconds(Int64(min(max(seconds, 0.001), 86_400) * 1e9))
    }
}
