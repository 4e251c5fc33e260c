import Hummingbird
import NIOCore

/// `GET /metrics`: the agent's metrics in Prometheus' text format (``AgentMetrics``), for
/// authenticated users only (``RAPIAuthMiddleware/needsUser(_:)``). Gauges that are read rather
/// than counted (the keys held) are brought up to date first.
extension RAPIRouter {
    static let metricsPath = "metrics"

    static func addMetricsRoute(_ router: Router<BasicRequestContext>, service: ClusterAgentService) {
        router.get("metrics") { _, _ in
            service.metrics.keysHeld(store: "export", count: service.keyStore.names().count)
            service.metrics.keysHeld(store: "import", count: service.importKeyStore.names().count)
            var headers = HTTPFields()
            headers[.contentType] = AgentMetrics.contentType
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: service.metrics.render())))
        }
    }
}
