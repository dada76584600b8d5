import Logging
import NIOCore
import NIOHTTP1
import SidecarHTTP
import Synchronization

/// The server's per-connection setup: NIO's HTTP/1.1 request decoder, then the
/// sidecar's own ``SidecarConnectionHandler``. ``SidecarListener`` runs the accept loops and
/// graceful shutdown; requests never leave the event loop on the hot path.
struct SidecarChildChannel: Sendable {
    let dispatcher: any RequestDispatcher
    let limits: ListenerLimits
    /// Client connections open now (over every event loop).
    let connections = ConnectionCount()

    func setup(channel: any Channel, logger: Logger) -> EventLoopFuture<Void> {
        let dispatcher = self.dispatcher
        let limits = self.limits
        let connections = self.connections
        // Beyond `max_connections`, a new connection is closed at once (before any byte is read).
        if connections.open.wrappingAdd(1, ordering: .relaxed).oldValue >= limits.maxConnections {
            connections.open.wrappingSubtract(1, ordering: .relaxed)
            logger.debug("connection refused: limits.max_connections reached")
            channel.close(promise: nil)
            return channel.eventLoop.makeSucceededVoidFuture()
        }
        channel.closeFuture.whenComplete { _ in connections.open.wrappingSubtract(1, ordering: .relaxed) }
        return channel.eventLoop.makeCompletedFuture {
            // Accepted sockets inherit TCP_NODELAY from NIO's listener on Linux; set it anyway so
            // small SSE chunks never wait for an ACK.
            if case .unixDomainSocket = channel.localAddress {
                // A Unix socket has no Nagle to turn off.
            } else {
                try channel.syncOptions?.setOption(.tcpOption(.tcp_nodelay), value: 1)
            }
            let sync = channel.pipeline.syncOperations
            // NIO's request decoder only: the handler frames its responses itself (HTTPResponseFramer),
            // queues pipelined requests and answers protocol errors with a 400 (431 past the
            // header limits).
            let decoder = HTTPDecoderHandler(
                HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes, limitConfiguration: limits.decoder)
            )
            let handler = SidecarConnectionHandler(dispatcher: dispatcher, limits: limits)
            // The request-read deadline starts at a request's first byte.
            decoder.onRead = { [unowned handler] in handler.bytesArrived() }
            try sync.addHandler(decoder)
            try sync.addHandler(handler)
        }
    }
}

/// The client connections open now, over every event loop.
final class ConnectionCount: Sendable {
    let open = Atomic<Int>(0)
}
