import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOSSL

/// Serves the RAPI over HTTPS with the agent's `rapi.pem`, within ``ServerLimits``.
public enum AgentServer {
    public static func run(service: ClusterAgentService, limits: ServerLimits = .fromEnvironment(),
                           onListening: @escaping @Sendable (Int) -> Void = { _ in }) async throws {
        let responder = RAPIRouter.responder(service: service)
        let pem = service.paths.rapiPEM
        let certificates: [NIOSSLCertificate]
        let key: NIOSSLPrivateKey
        do {
            certificates = try NIOSSLCertificate.fromPEMFile(pem)
            key = try NIOSSLPrivateKey(file: pem, format: .pem)
        } catch {
            throw AgentError.configuration("cannot load the RAPI certificate and key from \(pem): \(error)")
        }
        var tls = TLSConfiguration.makeServerConfiguration(certificateChain: certificates.map { .certificate($0) }, privateKey: .privateKey(key))
        tls.minimumTLSVersion = .tlsv12
        var logger = Logger(label: "gnt-move.agent")
        logger.logLevel = .warning
        let unreadBodyTimeout = ServerLimits.amount(limits.unreadBodyTimeout)
        let http = HTTP1Channel.Configuration(additionalChannelHandlers: [UnreadBodyLimiter(timeout: unreadBodyTimeout)],
                                              idleTimeout: ServerLimits.amount(limits.idleTimeout))
        let handshakeTimeout = ServerLimits.amount(limits.handshakeTimeout)
        let serverTLS = tls
        // TLS, then the handshake deadline, then HTTP/1.1 with its idle timeout and a bound on
        // bodies left unread.
        let server = HTTPServerBuilder { responder in
            try TLSChannel(HandshakeDeadlineChannel(base: HTTP1Channel(responder: responder, configuration: http), timeout: handshakeTimeout),
                           tlsConfiguration: serverTLS)
        }
        // What a crash left behind goes before anything is served.
        await service.recoverAfterRestart()
        let app = Application(
            responder: responder,
            server: server,
            configuration: .init(address: .hostname(service.config.bindAddress, port: service.config.port), serverName: "gnt-move agent",
                                 availableConnectionsDelegate: MaximumAvailableConnections(limits.maxConnections, logger: logger)),
            services: [SweeperService(agent: service, interval: .seconds(60), logger: logger)],
            onServerRunning: { channel in onListening(channel.localAddress?.port ?? service.config.port) },
            logger: logger)
        try await app.runService()
    }
}
