import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOTLS

/// Choosing HTTP/1.1 or HTTP/2 in the TLS handshake (ALPN), for endpoints that offer HTTP/2.
extension UpstreamConnection {
    /// TCP connected; the TLS handshake will choose HTTP/1.1 or HTTP/2
    /// (``protocolNegotiated(_:channel:)``) before a request is sent.
    package func awaitNegotiation(warm: Bool) {
        guard self.state == .connecting else {
            if warm { self.pool.warmConnectDone(self.endpointState, opened: false) }
            return
        }
        self.awaitingNegotiation = true
        self.warmAwaitsNegotiation = warm
        self.endpointState.negotiating += 1
    }

    /// The TLS handshake finished: HTTP/2 handlers and an ``UpstreamHTTP2Connection`` when it
    /// chose `h2`, else the HTTP/1.1 handlers, placed before this handler.
    func protocolNegotiated(_ result: ALPNResult, channel: any Channel) -> EventLoopFuture<Void> {
        self.handshakeDidFinish()
        self.negotiationEnded(chose: true)
        do {
            let sync = channel.pipeline.syncOperations
            guard case .negotiated("h2") = result else {
                self.endpointState.speaksHTTP2 = false
                try sync.addHandler(UpstreamRequestEncoder(), position: .before(self))
                try sync.addHandler(
                    UpstreamResponseDecoderHandler(
                        HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .drop)
                    ),
                    position: .before(self)
                )
                self.didConnect()
                // Calls that waited for this handshake in case it chose HTTP/2 open their own,
                // and so do the warm connections beyond this one.
                self.pool.serveWaiters(self.endpointState)
                self.pool.refill(self.endpointState)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            guard self.state == .connecting, !self.closeWhenConnected else {
                self.state = .closing
                channel.close(promise: nil)
                return channel.eventLoop.makeSucceededVoidFuture()
            }
            let handler = NIOHTTP2Handler(
                mode: .client,
                eventLoop: channel.eventLoop,
                connectionConfiguration: .init(),
                streamConfiguration: .init(),
                inboundStreamInitializer: { $0.close() }  // no server push is asked for
            )
            try sync.addHandler(handler, position: .before(self))
            let multiplexed = UpstreamHTTP2Connection(
                pool: self.pool,
                endpointState: self.endpointState,
                multiplexer: try handler.syncMultiplexer(),
                channel: channel
            )
            try sync.addHandler(multiplexed, position: .before(self))
            self.pool.configuration.events.http2Negotiated(self.endpoint)
            self.state = .multiplexed
            self.multiplexed = multiplexed
            self.requestsStarted = 1  // not an unused warm connection
            let call = self.call
            self.call = nil
            self.pool.adoptHTTP2(multiplexed, call: call)
            return channel.eventLoop.makeSucceededVoidFuture()
        } catch {
            self.close()
            return channel.eventLoop.makeFailedFuture(error)
        }
    }

    /// The handshake chose a protocol (`chose`), or the connection closed before it did.
    func negotiationEnded(chose: Bool) {
        guard self.awaitingNegotiation else { return }
        self.awaitingNegotiation = false
        self.endpointState.negotiating -= 1
        if self.warmAwaitsNegotiation {
            self.warmAwaitsNegotiation = false
            self.pool.warmConnectDone(self.endpointState, opened: chose)
        }
    }
}
