import Foundation
import Logging
import ServiceLifecycle

/// The periodic sweep (expired keys, abandoned imports, orphan daemons) as a service of the
/// agent's application: it starts and stops with the server, and a graceful shutdown ends it.
struct SweeperService: Service {
    let agent: ClusterAgentService
    let interval: Duration
    let logger: Logger

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: interval)
                // Host commands (stop, lvremove) are awaited, never waited for on a thread.
                let removed = await agent.sweep()
                for line in removed { logger.notice("sweep removed \(line)") }
            }
        }
    }
}
