import HummingbirdCore
import Logging
import NIOCore

/// A child channel that puts a ``HandshakeTimeoutHandler`` in front of `Base`'s handlers. Wrapped
/// in HummingbirdTLS's `TLSChannel`, the pipeline is: TLS, handshake deadline, HTTP.
struct HandshakeDeadlineChannel<Base: ServerChildChannel>: ServerChildChannel {
    typealias Value = Base.Value
    let base: Base
    let timeout: TimeAmount

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandler(HandshakeTimeoutHandler(timeout: timeout))
        }.flatMap {
            base.setup(channel: channel, logger: logger)
        }
    }

    func handle(value: Value, logger: Logger) async {
        await base.handle(value: value, logger: logger)
    }
}
