import NIOCore
import NIOHTTPTypes

/// Bounds what the server reads of a request body after it has answered the request. A handler
/// that does not read the body (any refusal, a GET) leaves Hummingbird to drain it before the
/// next request, and each body part counts as activity for the idle timeout: a client could
/// trickle a body forever and hold its connection. Once the response is written, the rest of the
/// body must arrive within `timeout` and `maxBytes`, or the connection is closed.
final class UnreadBodyLimiter: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    let timeout: TimeAmount
    let maxBytes: Int
    private var requestOpen = false
    private var draining = false
    private var drained = 0
    private var deadline: Scheduled<Void>?

    init(timeout: TimeAmount, maxBytes: Int = 1 << 20) {
        self.timeout = timeout
        self.maxBytes = maxBytes
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head:
            requestOpen = true
        case .body(let buffer):
            if draining {
                drained += buffer.readableBytes
                if drained > maxBytes {
                    stopDraining()
                    context.close(promise: nil)
                    return
                }
            }
        case .end:
            requestOpen = false
            stopDraining()
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data), requestOpen, !draining {
            draining = true
            drained = 0
            let channel = context.channel
            deadline = context.eventLoop.assumeIsolated().scheduleTask(in: timeout) { [weak self] in
                guard let self, self.draining else { return }
                channel.close(promise: nil)
            }
        }
        context.write(data, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) { stopDraining() }

    func channelInactive(context: ChannelHandlerContext) {
        stopDraining()
        context.fireChannelInactive()
    }

    private func stopDraining() {
        draining = false
        deadline?.cancel()
        deadline = nil
    }
}
