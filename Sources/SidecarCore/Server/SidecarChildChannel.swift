import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import SidecarHTTP

/// The server's per-connection setup: NIO's HTTP/1.1 request decoder, then the
/// sidecar's own ``SidecarConnectionHandler``. Hummingbird's server runs the accept loop, the
/// service lifecycle and graceful shutdown; requests never leave the event loop on the hot path.
struct SidecarChildChannel: ServerChildChannel {
    struct Value: ServerChildChannelValue {
        let channel: any Channel
    }

    let dispatcher: any RequestDispatcher
    let limits: ListenerLimits

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Value> {
        let dispatcher = self.dispatcher
        let limits = self.limits
        return channel.eventLoop.makeCompletedFuture {
            // Accepted sockets inherit TCP_NODELAY from NIO's listener on Linux; set it anyway so
            // small SSE chunks never wait for an ACK.
            try channel.syncOptions?.setOption(.tcpOption(.tcp_nodelay), value: 1)
            let sync = channel.pipeline.syncOperations
            // NIO's request decoder only: the handler frames its responses itself (HTTPResponseFramer),
            // queues pipelined requests and answers protocol errors with a 400.
            try sync.addHandler(HTTPDecoderHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
            try sync.addHandler(SidecarConnectionHandler(dispatcher: dispatcher, limits: limits))
            return Value(channel: channel)
        }
    }

    /// Waits for the connection to close. On graceful shutdown the server's quiescing helper
    /// sends `ChannelShouldQuiesceEvent`: the connection handler lets the request in flight
    /// finish, then closes (idle connections close at once).
    func handle(value: Value, logger: Logger) async {
        try? await value.channel.closeFuture.get()
    }
}
